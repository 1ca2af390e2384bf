#!/usr/bin/env bash
# Golden tests of the nll command-line tool.
#   bash tests/cli/run.sh path/to/nll
# NLL_TEST_PYTHON: a python3 with numpy and torch (default /usr/bin/python3). Fixtures and
# PyTorch reference results are generated into a temporary directory by make_fixtures.py.
# Prints one PASS/FAIL line per case; exits 1 if any case failed.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: bash tests/cli/run.sh path/to/nll" >&2
    exit 2
fi
NLL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
PY=${NLL_TEST_PYTHON:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export PYTHONDONTWRITEBYTECODE=1

if ! "$PY" "$HERE/make_fixtures.py" "$T" || ! "$PY" "$HERE/make_format_fixtures.py" "$T"; then
    echo "FAIL fixtures: make_fixtures.py or make_format_fixtures.py failed"
    exit 1
fi
cd "$T" || exit 1

PASS=0
FAIL=0
CASE=""
WHY=""

# ---- helpers ----

# Runs nll; a sanitizer report (in a sanitized build) fails the case whatever the exit status.
run() {
    "$NLL" "$@" >stdout 2>stderr
    RC=$?
    if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' stderr; then
        bad "sanitizer report on stderr"
    fi
}
begin() { CASE=$1; WHY=""; }
bad() { WHY="${WHY:+$WHY; }$*"; }
end() {
    if [ -z "$WHY" ]; then
        echo "PASS $CASE"
        PASS=$((PASS + 1))
    else
        echo "FAIL $CASE: $WHY"
        sed -n '1,6s/^/    stderr| /p' stderr
        FAIL=$((FAIL + 1))
    fi
}
expect_rc() { [ "$RC" -eq "$1" ] || bad "exit status $RC, expected $1"; }
expect_err() {
    local re
    for re in "$@"; do grep -Eq -- "$re" stderr || bad "stderr lacks /$re/"; done
}
expect_out() { [ "$(cat stdout)" = "$1" ] || bad "stdout '$(head -c 300 stdout)', expected '$1'"; }
expect_out_re() {
    local re
    for re in "$@"; do grep -Eq -- "$re" stdout || bad "stdout lacks /$re/"; done
}
# The names in a directory, space-separated (the tests' own file names are plain).
# shellcheck disable=SC2012
listing() { ls -A "$1" | tr '\n' ' '; }
expect_no_stdout() { [ ! -s stdout ] || bad "unexpected stdout '$(head -c 200 stdout)'"; }
# The loss printed on stdout equals VALUE to about 7 digits.
expect_loss() {
    "$PY" - "$1" <<'EOF' || bad "stdout '$(head -c 200 stdout)', expected loss: $1"
import math, sys
line = open("stdout").read().strip()
want = float(sys.argv[1])
ok = line.startswith("loss: ") and "\n" not in line
got = float(line[6:]) if ok else None
sys.exit(0 if ok and (got == want or (math.isnan(want) and math.isnan(got))
                      or abs(got - want) <= 1e-6 * max(1.0, abs(want))) else 1)
EOF
}

# fails RC ARGS...: `nll loss ARGS` with --out at an existing file and --grad at a new one must
# exit RC, print nothing on stdout, and leave the output directory exactly as it was. Exit 1
# prints the library's message and a status line; exit 2 prints one line.
fails() {
    local want=$1
    shift
    rm -rf o && mkdir o && printf 'sentinel' >o/existing.npy
    run loss "$@" --out o/existing.npy --grad o/new.npy
    expect_rc "$want"
    expect_no_stdout
    [ "$(cat o/existing.npy)" = sentinel ] || bad "an existing --out file was changed"
    [ "$(listing o)" = "existing.npy " ] || bad "files left in the output directory: $(listing o)"
    if [ "$want" -eq 1 ]; then
        grep -Eq '^nll loss: .+' stderr || bad "stderr lacks the 'nll loss: <message>' line"
        [ "$(grep -c '^status: NLL_ERROR_[A-Z_]*$' stderr)" -eq 1 ] || bad "stderr lacks one 'status: NLL_ERROR_...' line"
    elif [ "$want" -eq 2 ]; then
        [ "$(wc -l <stderr)" -eq 1 ] || bad "stderr is not one line: $(wc -l <stderr) lines"
    fi
}
# rejected STATUS ARGS...: the library refuses the input with STATUS (exit 1).
rejected() {
    local status=$1
    shift
    fails 1 "$@"
    grep -q "^status: $status\$" stderr || bad "stderr lacks 'status: $status'"
}

# ---- version and help ----

begin "--version"
run --version
expect_rc 0
expect_out "nll 0.1.0"
end

begin "--help"
run --help
expect_rc 0
expect_out_re '^usage:' 'nll loss --input' 'nll demo' '--op nll\|cross-entropy' '--weight' \
    '--reduction' '--ignore-index' '--label-smoothing' '--out' '--grad' '--no-check-finite' \
    '--allow-float-targets' '--version'
end

begin "loss --help"
run loss --help
expect_rc 0
expect_out_re '^usage:' '--target'
end

begin "no arguments: usage on stderr, exit 2"
run
expect_rc 2
expect_no_stdout
grep -q 'usage' stderr || bad "no usage on stderr"
end

# ---- reference cases against PyTorch (cases.tsv from make_fixtures.py) ----

while IFS=$'\t' read -r name args; do
    begin "torch $name"
    reduction=$(printf '%s\n' "$args" | sed -n 's/.*--reduction \([a-z]*\).*/\1/p')
    rm -f out.npy grad.npy
    # shellcheck disable=SC2086  # args is a word list of plain file names and options
    run loss $args --out out.npy --grad grad.npy
    expect_rc 0
    cp stdout stdout_a
    if [ "$RC" -eq 0 ]; then
        # shellcheck disable=SC2086
        run loss $args
        expect_rc 0
        cp stdout stdout_b
        msg=$("$PY" "$HERE/check.py" "$name" "$reduction") || bad "$(echo "$msg" | tr '\n' ';')"
    fi
    end
done <cases.tsv

# ---- exact stdout formats ----

begin "stdout: float32 mean uses %.9g"
run loss --input X.npy --target t012.npy
expect_rc 0
expect_out "loss: 0.933333337"
end

begin "stdout: float32 sum"
run loss --input X.npy --target t012.npy --reduction sum
expect_rc 0
expect_out "loss: 2.79999995"
end

begin "stdout: float64 uses %.17g"
run loss --input X64.npy --target t012.npy --reduction sum --op nll
expect_rc 0
expect_out "loss: 2.800000011920929"
end

begin "stdout: none without --out prints the flat list"
run loss --input X.npy --target t_ign.npy --reduction none
expect_rc 0
expect_out "loss: [1, 0, 0.300000012]"
end

begin "stdout: all ignored mean prints nan"
run loss --input X.npy --target t_allign.npy
expect_rc 0
expect_out "loss: nan"
end

begin "options as --name=value"
run loss --input=X.npy --target=t_ign.npy --weight=W.npy --reduction=mean
expect_rc 0
expect_loss 0.47500002
end

begin "ignore_index 255 drops targets equal to 255"
run loss --input X.npy --target t_255.npy --ignore-index 255
expect_rc 0
expect_loss 0.64999998
end

begin "--out writes a 0-d array for mean; --grad the input's shape"
rm -f o1.npy g1.npy
run loss --op cross-entropy --input Z.npy --target tZ.npy --out o1.npy --grad g1.npy
expect_rc 0
expect_loss 1.55868816
"$PY" -c '
import numpy as np, sys
o, g = np.load("o1.npy"), np.load("g1.npy")
sys.exit(0 if o.shape == () and o.dtype == np.float32 and g.shape == (3, 3) and g.dtype == np.float32 else 1)' ||
    bad "wrong shape or dtype in o1.npy/g1.npy"
end

begin "written .npy: version 1.0, data at a multiple of 64, header ends in newline"
"$PY" -c '
import struct, sys
b = open("o1.npy", "rb").read()
n = struct.unpack("<H", b[8:10])[0]
sys.exit(0 if b[:8] == b"\x93NUMPY\x01\x00" and (10 + n) % 64 == 0 and b[10 + n - 1:10 + n] == b"\n" else 1)' ||
    bad "bad header layout"
end

begin "--out overwrites an existing file"
printf 'old' >o2.npy
run loss --input X.npy --target t012.npy --out o2.npy
expect_rc 0
"$PY" -c 'import numpy as np, sys; sys.exit(0 if abs(float(np.load("o2.npy")) - 0.93333334) < 1e-6 else 1)' ||
    bad "o2.npy not replaced by the loss"
for f in ./.nll-* ./*nll-tmp*; do [ -e "$f" ] && bad "temporary file left behind: $f"; done
end

# ---- .npy header variants the reader accepts ----

for f in v2_X v3_X order_X; do
    begin "npy reader accepts $f.npy"
    run loss --input $f.npy --target t012.npy
    expect_rc 0
    expect_out "loss: 0.933333337"
    end
done
for f in nopad_t fortran1d_t eq_t; do
    begin "npy reader accepts $f.npy"
    run loss --input X.npy --target $f.npy
    expect_rc 0
    expect_out "loss: 0.933333337"
    end
done

# ---- inputs the library rejects (exit 1) ----

begin "float32 target rejected (nll)"
rejected NLL_ERROR_FLOAT_TARGET --input X.npy --target t_f32.npy
expect_err 'float32' '\.long\(\)' 'NLL_ALLOW_FLOAT_TARGETS|allow'
end

begin "float32 target rejected (cross-entropy)"
rejected NLL_ERROR_FLOAT_TARGET --op cross-entropy --input Z.npy --target tZ_f32.npy
expect_err 'float32' '\.long\(\)' 'nll_cross_entropy'
end

begin "float64 target rejected"
rejected NLL_ERROR_FLOAT_TARGET --input X.npy --target t_f64.npy
expect_err 'float64'
end

begin "float target accepted with --allow-float-targets"
run loss --input X.npy --target t_f32.npy --allow-float-targets
expect_rc 0
expect_out "loss: 0.933333337"
end

begin "non-whole float target rejected even with --allow-float-targets"
rejected NLL_ERROR_TARGET_NOT_WHOLE --input X.npy --target t_half.npy --allow-float-targets
expect_err '0\.5' 'whole'
end

begin "non-whole float target without the flag: says it is not whole"
rejected NLL_ERROR_FLOAT_TARGET --input X.npy --target t_half.npy
expect_err '0\.5' 'probabilit'
end

begin "1-based labels"
rejected NLL_ERROR_TARGET_RANGE --input X.npy --target t_1based.npy
expect_err '1-based' 'subtract 1' '\[0, 3\)'
end

begin "1-based labels (cross-entropy, --grad)"
rejected NLL_ERROR_TARGET_RANGE --op cross-entropy --input Z.npy --target t_1based.npy
expect_err '1-based'
end

begin "-1 padding with the default ignore_index"
rejected NLL_ERROR_TARGET_RANGE --input X.npy --target t_pad.npy
expect_err 'ignore_index=-1' '-100'
end

begin "255 void label"
rejected NLL_ERROR_TARGET_RANGE --input X.npy --target t_255.npy
expect_err '255' 'ignore_index=255'
end

begin "255 void label in a uint8 target"
rejected NLL_ERROR_TARGET_RANGE --op cross-entropy --input Z.npy --target t_u8_255.npy
expect_err '255' 'ignore_index=255'
end

begin "NaN input rejected by default"
rejected NLL_ERROR_NONFINITE --input X_nan.npy --target t10.npy
expect_err 'nan' 'not finite'
end

begin "+inf input rejected by default (cross-entropy)"
rejected NLL_ERROR_NONFINITE --op cross-entropy --input X_inf.npy --target t10.npy
expect_err 'inf'
end

begin "NaN input accepted with --no-check-finite"
run loss --input X_nan.npy --target t00.npy --no-check-finite
expect_rc 0
expect_out "loss: nan"
end

begin "target shape mismatch"
rejected NLL_ERROR_TARGET_SHAPE --input X.npy --target t_short.npy
expect_err '\(2\)' '\(3, 3\)'
end

begin "target with an extra dimension"
rejected NLL_ERROR_TARGET_SHAPE --op cross-entropy --input Z.npy --target t_2d.npy
end

begin "probability target of the wrong shape"
rejected NLL_ERROR_PROBABILITY_SHAPE --op cross-entropy --input Z.npy --target P_bad.npy
expect_err '\(3, 4\)' '\(3, 3\)'
end

begin "probability target with ignore_index >= 0"
rejected NLL_ERROR_IGNORE_INDEX --op cross-entropy --input Z.npy --target P.npy --ignore-index 0
end

begin "probability target of another dtype"
rejected NLL_ERROR_TARGET_DTYPE --op cross-entropy --input Z.npy --target P64.npy
end

begin "weight of the wrong length"
rejected NLL_ERROR_WEIGHT_SHAPE --input X.npy --target t012.npy --weight W4.npy
expect_err 'weight' '\(4\)' '\(3\)'
end

begin "weight of 2 dimensions"
rejected NLL_ERROR_WEIGHT_SHAPE --op cross-entropy --input Z.npy --target tZ.npy --weight W2d.npy
end

begin "weight of the wrong dtype"
rejected NLL_ERROR_WEIGHT_DTYPE --input X.npy --target t012.npy --weight W64.npy
expect_err 'weight' 'float64' 'float32'
end

begin "bool target"
rejected NLL_ERROR_TARGET_DTYPE --input X.npy --target t_bool.npy
expect_err 'bool'
end

begin "integer input"
rejected NLL_ERROR_INPUT_DTYPE --input X_int.npy --target t012.npy
expect_err 'int64'
end

begin "0-d input"
rejected NLL_ERROR_INPUT_RANK --input scalar.npy --target t0d.npy
end

begin "label smoothing outside [0, 1]"
rejected NLL_ERROR_LABEL_SMOOTHING --op cross-entropy --input Z.npy --target tZ.npy --label-smoothing 1.5
expect_err '1\.5'
end

begin "negative label smoothing"
rejected NLL_ERROR_LABEL_SMOOTHING --op cross-entropy --input Z.npy --target tZ.npy --label-smoothing -0.1
end

# ---- usage errors (exit 2) ----

begin "unknown option"
fails 2 --input X.npy --target t012.npy --frobnicate
expect_err "unknown option '--frobnicate'"
end

begin "missing --input"
fails 2 --target t012.npy
expect_err 'missing --input'
end

begin "missing --target"
fails 2 --input X.npy
expect_err 'missing --target'
end

begin "option without a value"
run loss --input X.npy --target
expect_rc 2
expect_err '--target needs a value'
end

begin "bad number for --ignore-index"
fails 2 --input X.npy --target t012.npy --ignore-index 1.5
expect_err "ignore-index '1\.5'"
end

begin "ignore-index out of int64 range"
fails 2 --input X.npy --target t012.npy --ignore-index 99999999999999999999
expect_err 'ignore-index'
end

begin "bad number for --label-smoothing"
fails 2 --op cross-entropy --input Z.npy --target tZ.npy --label-smoothing abc
expect_err "label-smoothing 'abc'"
end

begin "unknown --op"
fails 2 --op softmax --input X.npy --target t012.npy
expect_err "unknown --op 'softmax'"
end

begin "unknown --reduction"
fails 2 --reduction avg --input X.npy --target t012.npy
expect_err "unknown --reduction 'avg'"
end

begin "--label-smoothing with --op nll"
fails 2 --input X.npy --target t012.npy --label-smoothing 0.1
expect_err 'label-smoothing' 'cross-entropy'
end

begin "--label-smoothing 0 with --op nll is fine"
run loss --input X.npy --target t012.npy --label-smoothing 0
expect_rc 0
expect_out "loss: 0.933333337"
end

begin "option given twice"
fails 2 --input X.npy --input X.npy --target t012.npy
expect_err 'twice'
end

begin "unknown command"
run frobnicate
expect_rc 2
expect_err "unknown command 'frobnicate'"
end

# ---- file errors (exit 2): one line naming the file and the problem ----

begin "missing input file"
fails 2 --input nosuch.npy --target t012.npy
expect_err 'nosuch\.npy' 'No such file'
end

begin "missing weight file"
fails 2 --input X.npy --target t012.npy --weight nosuchw.npy
expect_err 'nosuchw\.npy'
end

begin "directory as input"
mkdir -p adir
fails 2 --input adir --target t012.npy
expect_err 'adir'
end

begin "empty file"
fails 2 --input empty.npy --target t012.npy
expect_err 'empty\.npy' 'not a \.npy'
end

begin "not a .npy file"
fails 2 --input X.npy --target notnpy.npy
expect_err 'notnpy\.npy' 'not a \.npy'
end

begin "unsupported format version"
fails 2 --input badversion.npy --target t012.npy
expect_err 'badversion\.npy' 'version 9\.0'
end

begin "truncated header"
fails 2 --input trunc_header.npy --target t012.npy
expect_err 'trunc_header\.npy' 'truncated' 'byte 40'
end

begin "truncated data"
fails 2 --input trunc_data.npy --target t012.npy
expect_err 'trunc_data\.npy' 'truncated' '36 bytes'
end

begin "malformed header dict"
fails 2 --input badheader.npy --target t012.npy
expect_err 'badheader\.npy' 'malformed' 'byte [0-9]+' "expected ','|expected '\}'"
end

begin "header missing a key"
fails 2 --input missingkey.npy --target t012.npy
expect_err 'missingkey\.npy' "fortran_order"
end

begin "negative dimension"
fails 2 --input negdim.npy --target t012.npy
expect_err 'negdim\.npy' 'negative'
end

begin "absurd header length"
fails 2 --input absurd_header.npy --target t012.npy
expect_err 'absurd_header\.npy' 'header length' 'byte 8'
end

begin "shape whose element count overflows int64"
fails 2 --input huge_shape.npy --target t012.npy
expect_err 'huge_shape\.npy' 'int64'
end

begin "shape whose byte size overflows int64"
fails 2 --input huge_bytes.npy --target t012.npy
expect_err 'huge_bytes\.npy' 'overflow'
end

begin "dimension beyond int64"
fails 2 --input bigdim.npy --target t012.npy
expect_err 'bigdim\.npy' 'int64'
end

begin "Fortran order is read as column-major (X transposed; the same diagonal)"
run loss --input fortran_X.npy --target t012.npy
expect_rc 0
expect_out "loss: 0.933333337"
end

begin "big-endian is read, byte-swapped"
run loss --input bigendian_X.npy --target t012.npy
expect_rc 0
expect_out "loss: 0.933333337"
end

begin "object dtype"
fails 2 --input X.npy --target object.npy
expect_err 'object\.npy' 'object'
end

begin "structured dtype"
fails 2 --input X.npy --target structured.npy
expect_err 'structured\.npy' 'structured'
end

begin "complex dtype"
fails 2 --input complex.npy --target t012.npy
expect_err 'complex\.npy' "'<c8'"
end

begin "--grad in a missing directory: exit 2, --out neither created nor changed"
rm -rf o && mkdir o
run loss --input X.npy --target t012.npy --out o/o.npy --grad nodir/g.npy
expect_rc 2
expect_no_stdout
expect_err 'nodir/g\.npy'
[ -z "$(listing o)" ] || bad "files left: $(listing o)"
printf 'sentinel' >o/o.npy
run loss --op cross-entropy --input Z.npy --target tZ.npy --out o/o.npy --grad nodir/g.npy
expect_rc 2
[ "$(cat o/o.npy)" = sentinel ] || bad "the existing --out file was changed"
[ "$(listing o)" = "o.npy " ] || bad "files left: $(listing o)"
end

# ---- file formats: round trips through `nll convert` ----

begin "round trips: NumPy's .npy (every dtype, both byte orders, C and Fortran order, v1-3), .npz (stored, deflated) and our .safetensors writer, read back equal as .npy and .safetensors"
mkdir -p conv
i=0
while IFS=$'\t' read -r spec expected; do
    run convert "$spec" "conv/$i.npy"
    [ "$RC" -eq 0 ] || bad "convert $spec -> .npy: exit $RC: $(head -c 200 stderr)"
    run convert "$spec" "conv/$i.safetensors"
    [ "$RC" -eq 0 ] || bad "convert $spec -> .safetensors: exit $RC: $(head -c 200 stderr)"
    i=$((i + 1))
done <formats.tsv
[ "$i" -gt 90 ] || bad "only $i round trips listed"
msg=$("$PY" "$HERE/check_roundtrip.py") || bad "$(echo "$msg" | head -5 | tr '\n' ';')"
end

begin "written .safetensors: 8-byte length, JSON header padded to a multiple of 8, one tensor"
"$PY" -c '
import json, struct, sys
b = open("conv/0.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
sys.exit(0 if (8 + n) % 8 == 0 and list(h) == ["tensor"]
         and h["tensor"]["data_offsets"] == [0, len(b) - 8 - n] else 1)' || bad "bad .safetensors layout"
end

begin "a tensor picked by name keeps its name in a .safetensors output"
run convert rt.safetensors:i16 named.safetensors
expect_rc 0
"$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import safetensors_py as st
sys.exit(0 if list(st.read("named.safetensors")) == ["i16"] else 1)' "$HERE" || bad "the tensor is not called i16"
end

begin "npz member by name, with or without .npy"
run loss --op cross-entropy --input rt_stored.npz:logits --target rt_deflated.npz:labels.npy
expect_rc 0
expect_out_re '^loss: [0-9.]+$'
end

begin "loss from .safetensors inputs, bfloat16, written as .safetensors"
rm -f bf16_loss.safetensors
run loss --op cross-entropy --input bf16.safetensors:logits --target bf16.safetensors:labels --out bf16_loss.safetensors
expect_rc 0
"$PY" -c '
import struct, sys
sys.path.insert(0, sys.argv[1])
import safetensors_py as st
code, shape, data = st.read("bf16_loss.safetensors")["loss"]
value = struct.unpack("<f", b"\0\0" + data)[0]
printed = float(open("stdout").read().split()[1])
ref = float(open("bf16.ref").read())
sys.exit(0 if code == "BF16" and shape == () and abs(value - ref) <= 0.01 * abs(ref)
         and value == printed else 1)' "$HERE" || bad "bf16 loss differs from PyTorch's or was not written as BF16"
end

begin "bfloat16 cannot be written as .npy: exit 2, the reason, nothing written"
rm -f bf16_loss.npy
run loss --op cross-entropy --input bf16.safetensors:logits --target bf16.safetensors:labels --out bf16_loss.npy
expect_rc 2
expect_err 'bfloat16' 'safetensors'
[ ! -e bf16_loss.npy ] || bad "bf16_loss.npy was created"
end

begin "a container of several tensors needs a name"
fails 2 --input rt_stored.npz --target t012.npy
expect_err 'rt_stored\.npz' 'holds 4 arrays' 'labels' 'rt_stored\.npz:NAME'
end

begin "an npz member that does not exist"
fails 2 --input rt_stored.npz:nosuch --target t012.npy
expect_err "no array 'nosuch'" 'logits'
end

begin "a safetensors tensor that does not exist"
fails 2 --input rt.safetensors:nosuch --target t012.npy
expect_err "no tensor 'nosuch'" 'f64'
end

begin "a member of a .npy file"
fails 2 --input X.npy:x --target t012.npy
expect_err 'no member'
end

# Corrupt and hostile files: exit 2, one line naming the file, the byte offset where there is one.
while IFS='|' read -r file patterns; do
    begin "hostile file $file"
    fails 2 --input "$file" --target t012.npy
    IFS='|' read -r -a res <<<"$patterns"
    expect_err "$(printf '%s' "$file" | sed 's/\./\\./g')" "${res[@]}"
    end
done <<'LIST'
bad_truncated.npz|not a valid
bad_member.npz|labels\.npy: malformed \.npy header at byte [0-9]+
bad_header_len.safetensors|header length 1099511627776 at byte 0|past the end
bad_offsets.safetensors|data_offsets \[0, 16\]|bytes 64\.\.80|past the end
bad_json.safetensors|malformed JSON header at byte [0-9]+
bad_shape.safetensors|overflows
unknown.bin|unknown format
absurd_header.npy|byte 8
huge_shape.npy|byte [0-9]+|overflows int64
LIST

# ---- nll check: golden reports ----

mkdir -p text json
UPDATE=${NLL_UPDATE_GOLDEN:-}
check_names=()
while IFS=$'\t' read -r name want args; do
    case "$name" in '#'* | '') continue ;; esac
    check_names+=("$name")
    begin "check $name"
    # shellcheck disable=SC2086  # args is a word list of plain file names and options
    run check $args
    cp stdout "text/$name.out"
    echo "$RC" >"text/$name.rc"
    expect_rc "$want"
    [ -s stderr ] && bad "unexpected stderr: $(head -c 200 stderr)"
    if [ -n "$UPDATE" ]; then
        mkdir -p "$HERE/golden"
        cp stdout "$HERE/golden/$name.out"
    elif [ ! -f "$HERE/golden/$name.out" ]; then
        bad "no golden/$name.out"
    elif ! diff -u "$HERE/golden/$name.out" stdout >diff.txt; then
        bad "stdout differs from golden/$name.out: $(head -c 600 diff.txt | tr '\n' '~')"
    fi
    # shellcheck disable=SC2086
    "$NLL" check $args --json >"json/$name.json" 2>stderr
    echo "$?" >"json/$name.rc"
    end
done <"$HERE/check_cases.tsv"

begin "check --json agrees with the text report for every golden case"
msg=$("$PY" "$HERE/check_json.py" "${check_names[@]}") || bad "$(echo "$msg" | head -8 | tr '\n' ';')"
end

begin "check --json: a 1-based label file in numbers"
"$PY" -c '
import json, sys
d = json.load(open("json/one_based.json"))
codes = [f["code"] for f in d["findings"]]
t = d["targets"]
sys.exit(0 if codes.count("labels-1-based") == 1 and t["min"] == 1 and t["max"] == 4
         and t["out_of_range"] == 3 and d["classes"]["count"] == 4
         and d["histogram"]["never_seen"] == [0] and d["summary"]["ok"] is False else 1)' ||
    bad "JSON facts of one_based are wrong"
end

begin "check: usage errors exit 2 with one line"
for args in "" "--target" "--target ck_labels.npy --classes 0" "--target ck_labels.npy --classes x" \
    "--target ck_labels.npy --op softmax" "--target ck_labels.npy --frobnicate" \
    "--target ck_labels.npy --json=1" "--target ck_labels.npy extra"; do
    # shellcheck disable=SC2086
    run check $args
    [ "$RC" -eq 2 ] || bad "'check $args': exit $RC"
    [ "$(wc -l <stderr)" -eq 1 ] || bad "'check $args': stderr not one line"
    [ -s stdout ] && bad "'check $args': stdout not empty"
done
end

begin "check: file errors exit 2 naming the file"
for f in nosuch.npy bad_offsets.safetensors rt_stored.npz bad_truncated.npz; do
    run check --target ck_labels.npy --input "$f"
    [ "$RC" -eq 2 ] || bad "input $f: exit $RC"
    grep -q "^nll check: $f" stderr || bad "input $f: stderr '$(head -c 200 stderr)'"
    [ -s stdout ] && bad "input $f: stdout not empty"
done
end

begin "check --help"
run check --help
expect_rc 0
expect_out_re '--target' '--json'
end

# ---- demo ----

begin "demo: the four mistakes with the library's messages, then training to >= 0.9 held-out accuracy"
run demo --no-plot
expect_rc 0
expect_out_re '^epoch  1/20  loss [0-9.]+  train accuracy 0\.[0-9]+' '^epoch 20/20' \
    'nll_cross_entropy_fused'
# The library's messages are word-wrapped: match them on the text with lines joined.
joined=$(tr -s ' \n' '  ' <stdout)
for re in 'NLL_ERROR_FLOAT_TARGET: nll_cross_entropy_forward: target has dtype float32, but class indices must be integers' \
    '\.long\(\)' 'the labels look 1-based \(min 1, max 3\): subtract 1' \
    '-1 found while ignore_index is -100: if -1 marks padding, pass ignore_index=-1' \
    'accepted, loss = -[0-9.]+' 'take the log first' 'cross-entropy on the logits gives [0-9.]+, the same'; do
    grep -Eq -- "$re" <<<"$joined" || bad "stdout lacks /$re/"
done
[ "$(grep -c '^   -> rejected with' stdout)" -eq 3 ] || bad "not 3 rejected calls"
[ "$(grep -c '^   -> loss = ' stdout)" -eq 4 ] || bad "not 4 corrected calls"
acc=$(sed -n 's/^held-out accuracy: \([0-9.]*\) .*/\1/p' stdout)
"$PY" -c "import sys; sys.exit(0 if float('${acc:-0}') >= 0.9 else 1)" || bad "held-out accuracy '$acc' < 0.9"
grep -q $'\r' stdout && bad "a progress bar on a non-terminal stdout"
[ -s stderr ] && bad "unexpected stderr"
end

begin "demo is deterministic"
sed 's/; trained in .*//' stdout >demo1.cut
run demo --no-plot
sed 's/; trained in .*//' stdout >demo2.cut
cmp -s demo1.cut demo2.cut || bad "two runs differ"
end

begin "demo --epochs 2 --plot: a PNG when gnuplot is installed"
rm -f curve.png
run demo --epochs 2 --plot curve.png
expect_rc 0
expect_out_re '^epoch  2/2'
if command -v gnuplot >/dev/null; then
    [ "$(head -c 4 curve.png | od -An -c | tr -d ' ')" = "211PNG" ] || bad "curve.png is not a PNG"
    expect_out_re '^loss curve: curve\.png$'
else
    [ ! -e curve.png ] || bad "curve.png without gnuplot"
fi
end

begin "demo --device cuda: this build has no CUDA backend, exit 2"
run demo --device cuda
expect_rc 2
expect_no_stdout
expect_err 'this build of libnll has no CUDA backend'
end

begin "demo: usage errors and a missing data file exit 2"
for args in "extra" "--device tpu" "--epochs 0" "--plot a.png --no-plot" "--data nosuch.csv.gz"; do
    # shellcheck disable=SC2086
    run demo $args
    [ "$RC" -eq 2 ] || bad "'demo $args': exit $RC"
done
expect_err 'nosuch\.csv\.gz'
end

begin "--help names every command"
run --help
expect_rc 0
expect_out_re 'nll check --target' 'nll convert IN OUT' 'nll demo' '\.npz' '\.safetensors'
end

# ---- files that are not regular files, long output names, hostile names, memory, shrinking ----

# run_limited ARGS...: run, but a tool that waits longer than 10 s (a FIFO opened for reading
# waits for a writer forever) is killed and the case fails.
run_limited() {
    timeout 10 "$NLL" "$@" >stdout 2>stderr
    RC=$?
    [ "$RC" -eq 124 ] && bad "'nll $*' still waiting after 10 s"
    if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:' stderr; then
        bad "sanitizer report on stderr"
    fi
}
# skip REASON: the case cannot run here (said on its own line, counted neither way).
skip() {
    echo "SKIP $CASE: $*"
    CASE=""
}
# No temporary output file is left in directory $1.
expect_no_temporaries() {
    local f
    for f in "$1"/.nll-* "$1"/*nll-tmp*; do [ -e "$f" ] && bad "temporary file left behind: $f"; done
}

begin "inputs that are FIFOs, directories, devices or sockets: exit 2 at once, 'not a regular file' naming the file"
rm -rf nr && mkdir nr && mkfifo nr/fifo.npy && mkdir nr/dir.npy
"$PY" -c 'import socket; socket.socket(socket.AF_UNIX).bind("nr/sock.npy")'
for spec in nr/fifo.npy nr/fifo.npy:x nr/dir.npy /dev/zero nr/sock.npy; do
    for args in "loss --input $spec --target t012.npy" "loss --input X.npy --target $spec" \
        "loss --input X.npy --target t012.npy --weight $spec" "check --target $spec" \
        "check --target t012.npy --input $spec" "convert $spec nr/out.npy"; do
        # shellcheck disable=SC2086  # plain words
        run_limited $args
        [ "$RC" -eq 2 ] || bad "'$args': exit $RC, expected 2"
        grep -q "^nll [a-z]*: ${spec%%:*}: not a regular file" stderr ||
            bad "'$args': stderr '$(head -c 200 stderr)'"
    done
done
[ -p nr/fifo.npy ] || bad "the FIFO is gone"
[ -e nr/out.npy ] && bad "convert wrote nr/out.npy"
end

begin "outputs that are FIFOs or directories: exit 2 at once, the node left as it was, nothing written"
rm -rf no && mkdir no && mkfifo no/fifo.npy && mkdir no/dir.npy
for args in "loss --input X.npy --target t012.npy --out no/fifo.npy" \
    "loss --input X.npy --target t012.npy --grad no/fifo.npy" \
    "loss --input X.npy --target t012.npy --out no/o.npy --grad no/fifo.npy" \
    "convert X.npy no/fifo.npy" "convert X.npy no/dir.npy"; do
    # (Not a device such as /dev/null: a tool without the check, run as root, would replace it.)
    # shellcheck disable=SC2086
    run_limited $args
    [ "$RC" -eq 2 ] || bad "'$args': exit $RC, expected 2"
    grep -Eq '^nll [a-z]+: no/(fifo|dir)\.npy: not a regular file' stderr ||
        bad "'$args': stderr '$(head -c 200 stderr)'"
done
[ -p no/fifo.npy ] || bad "the FIFO was replaced"
[ "$(listing no)" = "dir.npy fifo.npy " ] || bad "files left: $(listing no)"
end

begin "/dev/stdin: a pipe is refused as not a regular file, a redirected regular file is read"
printf 'x' | timeout 10 "$NLL" check --target /dev/stdin >stdout 2>stderr
RC=$?
[ "$RC" -eq 2 ] || bad "piped /dev/stdin: exit $RC"
grep -q '^nll check: /dev/stdin: not a regular file (a FIFO or pipe)' stderr || bad "piped: stderr '$(head -c 200 stderr)'"
timeout 10 "$NLL" loss --input X.npy --target /dev/stdin <t012.npy >stdout 2>stderr
RC=$?
[ "$RC" -eq 0 ] || bad "redirected /dev/stdin: exit $RC: $(head -c 200 stderr)"
end

begin "output names of 255 bytes (the most a directory entry holds): --out, --grad and convert"
rm -rf ln && mkdir ln
n251=$(printf 'n%.0s' $(seq 251))
n243=$(printf 'g%.0s' $(seq 243))
run loss --op cross-entropy --input Z.npy --target tZ.npy --out "ln/$n251.npy" --grad "ln/$n243.safetensors"
expect_rc 0
run convert X.npy "ln/c${n251:1}.npy"
expect_rc 0
"$PY" - "ln/$n251.npy" "ln/c${n251:1}.npy" "ln/$n243.safetensors" <<'PYEOF' || bad "outputs not readable back"
import sys, numpy as np
assert np.load(sys.argv[1]).shape == ()
assert np.array_equal(np.load(sys.argv[2]), np.load("X.npy"))
assert open(sys.argv[3], "rb").read(8) != b""
PYEOF
touch ln/plain
[ "$(stat -c %a "ln/$n251.npy" 2>&1)" = "$(stat -c %a ln/plain)" ] ||
    bad "an output's mode differs from a plainly created file's"
expect_no_temporaries ln
[ "$(find ln -type f | wc -l)" -eq 4 ] || bad "files in ln: $(find ln -type f | wc -l)"
end

# Names that would drive a terminal: set its title (ESC ] 0 ; ... BEL) and clear it (ESC [ 2 J).
EVIL=$'\e]0;pwned\a\e[2J'
EVIL_SHOWN='\x1b]0;pwned\x07\x1b[2J'
# clean FILE...: no byte below 0x20 but newline, no DEL, valid UTF-8 without C1 controls.
# (clean_json: tabs allowed too, cJSON's indentation.)
clean() {
    "$PY" - "$@" <<'PYEOF'
import sys
layout = "\n\t" if sys.argv[1] == "--json" else "\n"
for name in sys.argv[1:]:
    if name == "--json":
        continue
    b = open(name, "rb").read()
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError as e:
        sys.exit(f"{name}: not UTF-8: {e}")
    bad = [hex(ord(c)) for c in text if (ord(c) < 0x20 and c not in layout) or 0x7f <= ord(c) < 0xa0]
    if bad:
        sys.exit(f"{name}: control characters {bad[:8]}")
PYEOF
}

begin "hostile names in messages are escaped: file names, safetensors tensor names, .npy header keys, .npz member names, arguments"
rm -rf ev && mkdir ev
"$PY" - "$EVIL" <<'PYEOF'
import sys, io, zipfile, numpy as np
evil = sys.argv[1]
np.save("ev/ok" + evil + ".npy", np.array([0, 1, 2], np.int64))
open("ev/bad" + evil + ".npy", "wb").write(b"not a tensor file")
import json, struct
def st(header, data):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data
open("ev/two.safetensors", "wb").write(st(
    {evil: {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
     "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(16)))
open("ev/dtype.safetensors", "wb").write(st(
    {evil: {"dtype": "X" + evil, "shape": [2], "data_offsets": [0, 8]}}, bytes(8)))
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '" + evil + "': 0, }"
hdr = hdr.encode("latin-1")
hdr += b" " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + b"\n"
open("ev/key.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + bytes(8))
hdr = "{'descr': '<f" + evil + "', 'fortran_order': False, 'shape': (2,), }"
hdr = hdr.encode("latin-1")
hdr += b" " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + b"\n"
open("ev/descr.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + bytes(8))
# Member names: libzip reads a name without zip's UTF-8 flag as CP437 (ESC shows as an arrow)
# and refuses an archive whose UTF-8 names hold controls, so none reaches a message raw.
with zipfile.ZipFile("ev/members.npz", "w") as z:
    for name in (evil + ".npy", "b.npy"):
        buf = io.BytesIO(); np.save(buf, np.zeros(2, np.float32)); z.writestr(name, buf.getvalue())
with zipfile.ZipFile("ev/badmember.npz", "w") as z:
    z.writestr(evil + ".npy", b"not a tensor")
# DEL, a C1 control (U+009B, an 8-bit CSI), bytes that are not UTF-8; and UTF-8 text kept.
open(b"ev/mixed\x7f\xc2\x9b\xff\xfe-\xc3\xa9t\xc3\xa9.npy", "wb").write(b"junk")
np.save(b"ev/okmixed\x7f\xc2\x9b\xff.npy".decode("utf-8", "surrogateescape"), np.arange(3))
PYEOF
MIXED=$'ev/mixed\x7f\xc2\x9b\xff\xfe-\xc3\xa9t\xc3\xa9.npy'
CP437_SHOWN=$'\u2190]0;pwned\u2022\u2190[2J'
# How the name must show | the arguments
cases=(
    "$EVIL_SHOWN|loss|--input|ev/bad$EVIL.npy|--target|t012.npy"
    "$EVIL_SHOWN|loss|--input|ev/nosuch$EVIL.npy|--target|t012.npy"
    "$EVIL_SHOWN|loss|--input|ev/two.safetensors|--target|t012.npy"
    "$EVIL_SHOWN|loss|--input|ev/two.safetensors:nosuch|--target|t012.npy"
    "$EVIL_SHOWN|check|--target|ev/dtype.safetensors"
    "$EVIL_SHOWN|convert|ev/key.npy|ev/out.npy"
    "$EVIL_SHOWN|convert|ev/descr.npy|ev/out.npy"
    "$CP437_SHOWN|check|--target|ev/members.npz"
    "$CP437_SHOWN|check|--target|ev/members.npz:nosuch"
    "$CP437_SHOWN|convert|ev/badmember.npz|ev/out.npy"
    "$EVIL_SHOWN|loss|--input|X.npy|--target|t012.npy|--reduction|$EVIL"
    "$EVIL_SHOWN|check|--target|t012.npy|--frobnicate$EVIL"
    "$EVIL_SHOWN|loss|--input|X.npy|--target|t012.npy|--out|ev/nodir$EVIL/o.npy"
)
for c in "${cases[@]}"; do
    IFS='|' read -r want args <<<"$c"
    IFS='|' read -r -a args <<<"$args"
    run "${args[@]}"
    shown=${c#*|}
    shown=${shown//"$EVIL"/<evil>}
    shown=${shown//|/ }
    [ "$RC" -eq 2 ] || bad "'$shown': exit $RC, expected 2"
    why=$(clean stderr 2>&1) || bad "'$shown': $why"
    grep -qF -- "$want" stderr || bad "'$shown': stderr lacks the name shown as '$want': $(head -c 300 stderr | od -c | head -3 | tr -s ' \n' ' ')"
done
[ -e ev/out.npy ] && bad "convert wrote ev/out.npy"
run check --target "$MIXED"
[ "$RC" -eq 2 ] || bad "mixed name: exit $RC"
why=$(clean stderr 2>&1) || bad "mixed name: $why"
grep -qF 'ev/mixed\x7f\xc2\x9b\xff\xfe-été.npy' stderr || bad "mixed name: stderr '$(head -c 300 stderr)'"
end

begin "nll check quotes a hostile target name escaped in its report, and --json keeps it exactly"
run check --target "ev/ok$EVIL.npy"
expect_rc 0
why=$(clean stdout stderr 2>&1) || bad "$why"
grep -qF -- "ev/ok$EVIL_SHOWN.npy" stdout || bad "stdout lacks the escaped name"
run check --target "ev/ok$EVIL.npy" --json
expect_rc 0
why=$(clean --json stdout 2>&1) || bad "--json: $why"
"$PY" -c 'import json, sys; sys.exit(0 if json.load(open("stdout"))["target"]["file"] == sys.argv[1] else 1)' \
    "ev/ok$EVIL.npy" || bad "--json: the file name does not decode to the name"
# DEL and C1 as \u escapes; a byte that is not UTF-8 as the text \xff (JSON is UTF-8).
run check --target $'ev/okmixed\x7f\xc2\x9b\xff.npy' --json
expect_rc 0
why=$(clean --json stdout 2>&1) || bad "--json, DEL/C1/invalid UTF-8: $why"
"$PY" -c 'import json, sys; sys.exit(0 if json.load(open("stdout"))["target"]["file"] == "ev/okmixed\x7f\x9b\\xff.npy" else 1)' ||
    bad "--json: the name with DEL, C1 and an invalid byte does not decode as expected"
end

# A member that inflates to more memory than the process may have: refused before allocating.
begin "an .npz member larger than the memory available: exit 2 naming the limit (ulimit -v)"
"$PY" - <<'PYEOF'
import struct, zipfile, zlib, numpy as np
# A float32 member of 512 MiB of zeros, deflated to about half a megabyte.
n = 128 << 20
hdr = ("{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % n).encode()
hdr += b" " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + b"\n"
head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr
with zipfile.ZipFile("big.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
    with z.open("x.npy", "w") as f:
        f.write(head)
        chunk = bytes(16 << 20)
        for _ in range((4 * n) // len(chunk)):
            f.write(chunk)
PYEOF
LIMIT_KB=262144 # 256 MiB of address space: enough to run, not to hold the member
if ! { (ulimit -v "$LIMIT_KB" && "$NLL" --version) >/dev/null 2>&1; } 2>/dev/null; then
    # A sanitizer's shadow memory needs terabytes of address space: no limit can be set.
    skip "the tool cannot start under ulimit -v (a sanitizer build)"
else
    for args in "check --target big.npz" "loss --input big.npz --target t012.npy" "convert big.npz big.npy"; do
        # shellcheck disable=SC2086
        (ulimit -v "$LIMIT_KB" && exec "$NLL" $args) >stdout 2>stderr
        RC=$?
        [ "$RC" -eq 2 ] || bad "'$args': exit $RC, expected 2"
        grep -q '^nll [a-z]*: big\.npz:x\.npy: needs 536871040 bytes (0\.50 GiB) to decompress the member, more than the room left under the address-space limit (ulimit -v): [0-9]* bytes' stderr ||
            bad "'$args': stderr '$(head -c 300 stderr)'"
    done
    [ -e big.npy ] && bad "convert wrote big.npy"
    end
fi
rm -f big.npz

# A mapped input that shrinks while in use (another process truncating it): the pages past
# its new end fault (SIGBUS). A shim around mmap truncates the file as soon as it is mapped.
begin "an input file truncated while mapped: exit 2 naming the file, no crash, no output"
cat >shrink.c <<'CEOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
/* mmap, then truncate the file SHRINK_PATH to SHRINK_TO bytes if that is the file mapped. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
    static void *(*real)(void *, size_t, int, int, int, off_t);
    const char *path = getenv("SHRINK_PATH"), *to = getenv("SHRINK_TO");
    struct stat mapped, named;
    void *p;
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "mmap");
    p = real(addr, len, prot, flags, fd, offset);
    if (p != MAP_FAILED && fd >= 0 && path != NULL && fstat(fd, &mapped) == 0 &&
        stat(path, &named) == 0 && mapped.st_dev == named.st_dev && mapped.st_ino == named.st_ino)
        if (truncate(path, to != NULL ? atol(to) : 0) != 0)
            abort();
    return p;
}
CEOF
if ! ${CC:-cc} -shared -fPIC -O1 -o shrink.so shrink.c -ldl 2>stderr; then
    skip "no C compiler to build the mmap shim (${CC:-cc})"
else
    "$PY" -c '
import numpy as np
rng = np.random.default_rng(0)
np.save("shr_x.npy", rng.standard_normal((64, 100)).astype(np.float32))
np.save("shr_t.npy", rng.integers(0, 100, 4096).astype(np.int64))
np.save("t64.npy", rng.integers(0, 100, 64).astype(np.int64))'
    rm -rf so && mkdir so
    # ARGS | the file to shrink | its size after: 0 (the reader faults), 4096 (the data does)
    while IFS='|' read -r args file to; do
        cp shr_x.npy so_x.npy && cp shr_t.npy so_t.npy
        # shellcheck disable=SC2086
        LD_PRELOAD=$PWD/shrink.so SHRINK_PATH=$file SHRINK_TO=$to \
            ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
            timeout 60 "$NLL" $args >stdout 2>stderr
        RC=$?
        [ "$RC" -eq 2 ] || bad "'$args' ($file to $to bytes): exit $RC, expected 2"
        grep -Eq "^nll [a-z]+: $file: the file shrank while it was being read \((byte [0-9]+ is past its end now|[0-9]+ bytes now, [0-9]+ when opened)\)" stderr ||
            bad "'$args': stderr '$(head -c 300 stderr)'"
        [ "$(wc -l <stderr)" -eq 1 ] || bad "'$args': stderr is not one line"
        [ -z "$(listing so)" ] || bad "'$args': files left in so/: $(listing so)"
    done <<'LIST'
loss --input so_x.npy --target t64.npy --out so/l.npy --grad so/g.npy|so_x.npy|0
loss --input so_x.npy --target t64.npy --out so/l.npy --grad so/g.npy|so_x.npy|4096
loss --op cross-entropy --input so_x.npy --target t64.npy --grad so/g.npy --no-check-finite|so_x.npy|4096
check --target so_t.npy --classes 100|so_t.npy|4096
check --target t64.npy --input so_x.npy|so_x.npy|4096
convert so_x.npy so/c.npy|so_x.npy|4096
convert so_x.npy so/c.safetensors|so_x.npy|8192
LIST
    end
fi

echo "cli: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
