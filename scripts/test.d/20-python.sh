#!/usr/bin/env bash
# The Python package: pip install . into a venv that sees Debian's numpy and torch, then its
# pytest suite (tests/python) against torch.nn.functional.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build-python/venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check .
# From the tests folder, so `import nll` finds the installed package, not the source tree.
cd tests/python
"../../$venv/bin/python" -m pytest -q -p no:cacheprovider .
