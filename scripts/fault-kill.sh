#!/usr/bin/env bash
# Kills convnet with SIGKILL at random moments while it writes — classifier training,
# fine-tuning, detector training and face-gallery enrolment — and checks after each kill that
# every file left is loadable and agrees with the others:
#   runs:    last.ckpt, best.ckpt and history.csv show the same commit (history rows = the
#            epochs last.ckpt has done, best.ckpt is the epoch last.ckpt names as best, with
#            the score history.csv shows), `convnet eval RUN` works (train, detect), and
#            (train, finetune) `train --resume` carries on from the committed epoch;
#   gallery: `convnet face list` works and SQLite's integrity check passes.
# Not run in CI (it takes minutes). Usage: scripts/fault-kill.sh [N]  (N kills per scenario,
# default 20). Needs Fashion-MNIST (scripts/install-data.sh), face-api's files
# (scripts/fetch-pretrained.sh face-api) and python3; uses sqlite3 when installed.
set -euo pipefail

N=${1:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# The dev profile optimises dependencies; a release build would take far longer than the runs.
cargo build -q -p convnet-cli
BIN=${CONVNET_BIN:-"$ROOT/target/debug/convnet"}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FACE="$ROOT/third_party/face-api/demo/sample1.jpg"

# Reads a run directory's checkpoints and history; prints the committed epoch, or "none"
# when nothing was committed; exits 1 (saying why) when the files disagree.
check_run() {
    python3 - "$1" <<'EOF'
import json, os, struct, sys, zlib
run = sys.argv[1]

def meta(path):
    data = open(path, "rb").read()
    assert data[:8] == b"CNVNTCK1", f"{path}: bad magic"
    assert zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0], f"{path}: bad checksum"
    (n,) = struct.unpack("<Q", data[8:16])
    return json.loads(data[16:16 + n])

last_path = os.path.join(run, "checkpoints", "last.ckpt")
if not os.path.isfile(last_path):
    # Killed before the first commit: nothing may claim otherwise.
    assert not os.path.isfile(os.path.join(run, "history.csv")), "history without a checkpoint"
    print("none")
    sys.exit(0)
last = meta(last_path)
rows = open(os.path.join(run, "history.csv")).read().splitlines()
header, rows = rows[0].split(","), [dict(zip(rows[0].split(","), r.split(","))) for r in rows[1:]]
assert len(rows) == last["epoch"], f"{len(rows)} history rows, last.ckpt has {last['epoch']} epochs"
best_epoch = last.get("best_epoch")
if best_epoch:
    best = meta(os.path.join(run, "checkpoints", "best.ckpt"))
    assert best["epoch"] == best_epoch, f"best.ckpt is epoch {best['epoch']}, last.ckpt says {best_epoch}"
    score = last.get("best_val_accuracy")
    if score is not None:
        row = rows[best_epoch - 1]
        cells = [row.get(k) for k in ("val_accuracy", "val_mean_iou", "val_map50")]
        assert any(c and abs(float(c) - score) < 1e-6 for c in cells), \
            f"best score {score} is not epoch {best_epoch}'s in history.csv ({row})"
print(last["epoch"])
EOF
}

# Starts `$@` in the background, kills it with SIGKILL after a random 0.2–3 s.
kill_randomly() {
    "$@" >/dev/null 2>&1 &
    local pid=$!
    sleep "$(python3 -c 'import random; print(round(random.uniform(0.2, 3.0), 2))')"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

declare -A KILLS GOOD BAD EMPTY

record() { # scenario ok|bad [why]
    KILLS[$1]=$((${KILLS[$1]:-0} + 1))
    if [ "$2" = ok ]; then
        GOOD[$1]=$((${GOOD[$1]:-0} + 1))
    else
        BAD[$1]=$((${BAD[$1]:-0} + 1))
        echo "  $1: inconsistent: $3" >&2
    fi
}

# A killed run is consistent when its files agree, eval reads it (eval=yes), and
# (resume=yes) resuming finishes exactly one more epoch than was committed.
judge_run() { # scenario run eval resume
    local scenario=$1 run=$2 eval=$3 resume=$4 epoch why
    if ! epoch=$(check_run "$run" 2>&1); then
        record "$scenario" bad "$epoch"
        return
    fi
    if [ "$epoch" = none ]; then
        EMPTY[$scenario]=$((${EMPTY[$scenario]:-0} + 1))
        record "$scenario" ok
        return
    fi
    if [ "$eval" = yes ] && ! why=$("$BIN" -q eval "$run" --limit 50 --json 2>&1 >/dev/null); then
        record "$scenario" bad "eval: $why"
        return
    fi
    if [ "$resume" = yes ]; then
        if ! why=$("$BIN" -q train --resume "$run" --epochs $((epoch + 1)) --json 2>&1 >/dev/null); then
            record "$scenario" bad "resume: $why"
            return
        fi
        local after
        after=$(check_run "$run" 2>&1) || { record "$scenario" bad "after resume: $after"; return; }
        [ "$after" = $((epoch + 1)) ] || { record "$scenario" bad "resumed to epoch $after, not $((epoch + 1))"; return; }
    fi
    record "$scenario" ok
}

echo "==> $N kills per scenario"
BASE="$WORK/base"
"$BIN" -q train --model lenet5 --limit 300 --test-limit 100 --epochs 1 --out "$BASE" >/dev/null

for i in $(seq "$N"); do
    run="$WORK/train-$i"
    kill_randomly "$BIN" -q train --model lenet5 --limit 400 --test-limit 100 --batch 32 \
        --epochs 100000 --out "$run"
    judge_run train "$run" yes yes

    run="$WORK/finetune-$i"
    kill_randomly "$BIN" -q finetune --base lenet5 --weights "$BASE" --data fashion-mnist \
        --only-classes 5-9 --per-class 40 --classes 5 --batch 16 --epochs 100000 --out "$run"
    # `eval` scores on all ten classes, not the five the run learnt: the checks and the
    # resume read it instead.
    judge_run finetune "$run" no yes

    run="$WORK/detect-$i"
    kill_randomly "$BIN" -q train --task detect --train-size 32 --test-limit 8 --batch 16 \
        --save-every 1 --epochs 100000 --out "$run"
    judge_run detect "$run" yes no

    gallery="$WORK/faces.sqlite"
    kill_randomly "$BIN" -q face enroll "person$i" "$FACE" --largest --gallery "$gallery"
    if [ ! -e "$gallery" ]; then
        EMPTY[face]=$((${EMPTY[face]:-0} + 1))
        record face ok
    elif ! why=$("$BIN" -q face list --gallery "$gallery" --json 2>&1 >/dev/null); then
        record face bad "face list: $why"
    elif command -v sqlite3 >/dev/null &&
        [ "$(sqlite3 "$gallery" 'PRAGMA integrity_check;')" != ok ]; then
        record face bad "integrity_check failed"
    else
        record face ok
    fi
done

# "before any commit": killed before the first epoch (or enrolment) was committed.
printf '\n%-10s %6s %11s %13s %20s\n' scenario kills consistent inconsistent "before any commit"
status=0
for s in train finetune detect face; do
    printf '%-10s %6d %11d %13d %20d\n' "$s" "${KILLS[$s]:-0}" "${GOOD[$s]:-0}" "${BAD[$s]:-0}" \
        "${EMPTY[$s]:-0}"
    [ "${BAD[$s]:-0}" = 0 ] || status=1
done
exit $status
