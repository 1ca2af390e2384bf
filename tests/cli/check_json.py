"""Checks `nll check --json` against the text report of the same case; run in the fixture
directory after run.sh has written json/NAME.{json,rc} and text/NAME.{out,rc}.

check_json.py NAME...: for each case, the JSON parses, its exit status equals the text run's,
summary.errors > 0 exactly when the exit status is 1, and its findings (severity, code,
message, fix) are those of the text report, in the same multiset. Prints problems; exit 1.
"""
import json
import re
import sys

problems = []
for name in sys.argv[1:]:
    rc_text = open("text/%s.rc" % name).read().strip()
    rc_json = open("json/%s.rc" % name).read().strip()
    if rc_text != rc_json:
        problems.append("%s: exit status %s with --json, %s without" % (name, rc_json, rc_text))
    try:
        doc = json.load(open("json/%s.json" % name))
    except ValueError as e:
        problems.append("%s: --json output does not parse: %s" % (name, e))
        continue
    s = doc["summary"]
    if (s["errors"] > 0) != (rc_json == "1") or s["ok"] != (s["errors"] == 0):
        problems.append("%s: summary %s disagrees with exit status %s" % (name, s, rc_json))
    text = open("text/%s.out" % name).read()
    found = re.findall(r"^(error|warning|note) \[([a-z0-9-]+)\]: (.*)\n(?:  fix: (.*)\n)?", text, re.M)
    from_text = sorted((sev, code, msg, fix) for sev, code, msg, fix in found)
    from_json = sorted((f["severity"], f["code"], f["message"], f.get("fix", ""))
                       for f in doc["findings"])
    if from_text != from_json:
        problems.append("%s: findings differ:\n  text %s\n  json %s" % (name, from_text, from_json))
    for key in ("target", "classes", "op"):
        if key not in doc:
            problems.append("%s: no '%s' in the JSON" % (name, key))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
