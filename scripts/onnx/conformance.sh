#!/usr/bin/env bash
# ONNX's backend node tests through convnet's importer: every test folder that the `onnx`
# Python package ships, run by crates/graph/examples/onnx_conformance.rs; a table per operator.
#
#   scripts/onnx/conformance.sh                 # writes specs/onnx-conformance.md
#   scripts/onnx/conformance.sh --markdown      # prints the markdown instead
#   scripts/onnx/conformance.sh --filter resize # only the tests whose name contains "resize"
#   scripts/onnx/conformance.sh --onnx 1.16     # one set only
#
# Options:
#   --onnx VERSION  an `onnx` release whose node tests run, repeatable; default 1.16 and 1.22,
#                   one section each. 1.16 ships the tests at opsets up to 21 (issue 30's
#                   range), 1.22 at opsets up to 25; 1.22 is the last release that ships them
#                   as files (1.23 rebuilds them in code), hence versions pinned to a minor
#                   release. Each lives in its own virtualenv, /tmp/venv-onnx-VERSION (made
#                   if absent; for 1.22, $ONNX_VENV or /tmp/venv-onnx).
#   --out FILE      where the markdown goes (default specs/onnx-conformance.md)
#   --timeout S     seconds one test may take before it is reported as hung and the run goes
#                   on without it (default 60); a test that kills the process is reported too
#   --dev           build with the dev profile instead of --release: its dependencies are
#                   optimised too, and it reuses what `cargo test` built (a first release
#                   build of Burn takes a quarter of an hour on two cores)
#   --bin PATH      an onnx_conformance binary already built; nothing is built
#
# Every test runs, whatever its operator; the summary groups tests by the one operator each
# model holds (Constant nodes aside) and reports the operators of issue 30 first. A test is
# `pass` (every output of every data set within rtol 1e-3, atol 1e-7: the ONNX runner's
# rule), `fail`, `unsupported` (refused at open) or `error`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VERSIONS=()
OUT=$ROOT/specs/onnx-conformance.md
MARKDOWN=0
FILTER=
TIMEOUT=60
PROFILE=release
BIN=
while [ $# -gt 0 ]; do
  case $1 in
    --markdown) MARKDOWN=1 ;;
    --onnx) VERSIONS+=("$2"); shift ;;
    --out) OUT=$2; shift ;;
    --filter) FILTER=$2; shift ;;
    --timeout) TIMEOUT=$2; shift ;;
    --dev) PROFILE=dev ;;
    --bin) BIN=$2; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(1.16 1.22)
SETS=()
for VERSION in "${VERSIONS[@]}"; do
  VENV=/tmp/venv-onnx-$VERSION
  if [ "$VERSION" = 1.22 ]; then VENV=${ONNX_VENV:-/tmp/venv-onnx}; fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import onnx, sys; sys.exit(not onnx.__version__.startswith('$VERSION.'))" 2>/dev/null; then
    "$VENV/bin/pip" install -q "onnx==$VERSION.*"
  fi
  DATA=$("$VENV/bin/python" -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node"))')
  FULL=$("$VENV/bin/python" -c 'import onnx; print(onnx.__version__)')
  if [ ! -d "$DATA" ]; then
    echo "onnx $FULL in $VENV ships no node-test folders (1.22 is the last that does)" >&2
    exit 1
  fi
  SETS+=("$FULL=$DATA")
  PYTHON=$VENV/bin/python
done

cd "$ROOT"
if [ -z "$BIN" ]; then
  cargo build --profile "$PROFILE" -p convnet-graph --example onnx_conformance >&2
  if [ "$PROFILE" = dev ]; then DIR=debug; else DIR=release; fi
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/$DIR/examples/onnx_conformance
fi

"$PYTHON" - "$BIN" "$OUT" "$MARKDOWN" "$FILTER" "$TIMEOUT" "${SETS[@]}" <<'PY'
import json, os, queue, subprocess, sys, threading, time

binary, out_path, markdown, name_filter, timeout, *sets = sys.argv[1:]
timeout = float(timeout)

ISSUE_OPS = """Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool
BatchNormalization InstanceNormalization LRN Gemm MatMul Relu LeakyRelu PRelu Clip Sigmoid
HardSigmoid HardSwish Tanh Softmax Elu Add Sub Mul Div Pow Sqrt Exp Neg Concat Split Slice
Reshape Flatten Transpose Squeeze Unsqueeze Pad Resize Upsample Constant Shape Gather ReduceMean
Dropout""".split()
STATUSES = ["pass", "fail", "unsupported", "error"]


def model_ops(folder):
    """The operator types of a test the example did not get to report."""
    import onnx
    try:
        model = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
    except Exception:
        return []
    return list(dict.fromkeys(n.op_type for n in model.graph.node))


def run(pending):
    """Runs the example over `pending`, yielding one result per test. A test that hangs or
    takes the process down is reported as an error and the rest run in a new process."""
    while pending:
        proc = subprocess.Popen([binary, "--json", *pending], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines = queue.Queue()

        def pump():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        done = 0
        while True:
            try:
                line = lines.get(timeout=timeout)
            except queue.Empty:
                proc.kill()
                proc.wait()
                why = f"no result within {timeout:.0f} s (killed)"
                break
            if line is None:
                proc.wait()
                last = (proc.stderr.read().strip().splitlines() or [""])[-1][:300]
                why = f"the process ended with status {proc.returncode}: {last}"
                break
            yield json.loads(line)
            done += 1
        if done >= len(pending):
            return
        culprit = pending[done]
        ops = model_ops(culprit)
        yield {"test": os.path.basename(culprit), "dir": culprit, "ops": ops, "op": op_of(ops),
               "opset": None, "status": "error", "max_diff": None, "detail": why}
        pending = pending[done + 1:]


def op_of(ops):
    """The example's rule, for a test it did not get to report: the one operator of the
    model once Constant nodes (which feed tensors) are left out, or None."""
    rest = [o for o in ops if o != "Constant"]
    if len(rest) == 1:
        return rest[0]
    return ops[0] if not rest and ops else None


def counts(rs):
    return [sum(r["status"] == s for r in rs) for s in STATUSES]


def section(version, results, elapsed):
    by_op, composite = {}, []
    for r in results:
        op = r["op"]
        if op is None:
            composite.append(r)
        else:
            by_op.setdefault(op, []).append(r)
    opsets = sorted({r["opset"] for r in results if r["opset"] is not None})
    out = [f"## onnx {version}: {len(results)} node tests, opsets {opsets[0] if opsets else '?'} to "
           f"{opsets[-1] if opsets else '?'} ({elapsed:.0f} s)", ""]
    out += ["### The operators of issue 30", ""]
    out += ["| operator | cases | passed | failed | unsupported | errors | opsets | not passing |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    issue_rs = []
    for op in ISSUE_OPS:
        rs = by_op.get(op, [])
        issue_rs += rs
        c = counts(rs)
        seen = sorted({r["opset"] for r in rs if r["opset"] is not None})
        bad = [r["test"].removeprefix("test_") for r in rs if r["status"] != "pass"]
        out.append(f"| {op} | {len(rs)} | {c[0]} | {c[1]} | {c[2]} | {c[3]} | "
                   f"{', '.join(map(str, seen))} | {', '.join(bad)} |")
    c = counts(issue_rs)
    out += [f"| **all** | {len(issue_rs)} | {c[0]} | {c[1]} | {c[2]} | {c[3]} | | |", ""]
    bad = [r for r in issue_rs if r["status"] != "pass"]
    if bad:
        out += ["#### Their tests that do not pass", "",
                "| test | status | max abs diff | detail |", "| --- | --- | --- | --- |"]
        for r in bad:
            diff = "" if r["max_diff"] is None else f"{r['max_diff']:.2e}"
            detail = r["detail"].replace(r["dir"] + os.sep, "").replace("|", "\\|")
            out.append(f"| {r['test']} | {r['status']} | {diff} | {detail} |")
        out.append("")
    others = {op: rs for op, rs in by_op.items() if op not in ISSUE_OPS}
    passing = sorted(op for op, rs in others.items() if counts(rs)[0] == len(rs))
    partial = sorted(op for op, rs in others.items() if 0 < counts(rs)[0] < len(rs))
    c = counts([r for rs in others.values() for r in rs])
    out += ["### Other operators", "",
            f"{sum(map(len, others.values()))} tests of {len(others)} operators outside the issue's "
            f"list: {c[0]} pass, {c[1]} fail, {c[2]} unsupported, {c[3]} errors.", "",
            f"- Every test passes: {', '.join(passing) or 'none'}.",
            "- Some pass: " + (", ".join(f"{op} ({counts(others[op])[0]}/{len(others[op])})"
                                        for op in partial) or "none") + ".", ""]
    c = counts(composite)
    out += ["### Tests of several operators", "",
            f"{len(composite)} tests (mostly the `_expanded` function bodies): {c[0]} pass, "
            f"{c[1]} fail, {c[2]} unsupported, {c[3]} errors."]
    passed = sorted(r["test"] for r in composite if r["status"] == "pass")
    if passed:
        out += ["", "Passing: " + ", ".join(passed) + "."]
    out.append("")
    return out, issue_rs


lines = ["# ONNX conformance: convnet's importer on ONNX's backend node tests", "",
         "Made by `scripts/onnx/conformance.sh` (`crates/graph/examples/onnx_conformance.rs`) from "
         "the node tests that the `onnx` Python package ships. A test passes when every output of "
         "every data set is within the ONNX runner's tolerance, |got - want| <= 1e-7 + 1e-3 |want| "
         "(NaN equal to NaN, integers and booleans exact, shapes and element types equal). "
         "`unsupported`: the importer refused the model's operators at open; `error`: any other "
         "error (a refused mode or attribute, a panic). Tests are grouped by the one operator "
         "their model holds (Constant nodes aside); an operator passes when all its tests pass.", ""]
summary = []
for entry in sets:
    version, data = entry.split("=", 1)
    folders = sorted(
        os.path.join(data, n) for n in os.listdir(data)
        if os.path.isfile(os.path.join(data, n, "model.onnx")) and name_filter in n
    )
    start = time.time()
    results = []
    for r in run(folders):
        results.append(r)
        print(f"onnx {version} {r['status']:<11} {r['test']} {r['detail'][:200]}", file=sys.stderr)
    part, issue_rs = section(version, results, time.time() - start)
    lines += part
    c = counts(issue_rs)
    summary.append(f"onnx {version}: issue 30's operators: {len(issue_rs)} tests, {c[0]} pass, "
                   f"{c[1]} fail, {c[2]} unsupported, {c[3]} errors (all {len(results)} tests)")
text = "\n".join(lines)

if markdown == "1":
    sys.stdout.write(text)
else:
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(text)
    print(out_path)
print("\n".join(summary), file=sys.stderr if markdown == "1" else sys.stdout)
PY
