#!/usr/bin/env bash
# Issue 29's tree-crown detector from nothing: fetches DeepForest's two labelled Yellowstone
# crops (scripts/fetch-trees.sh), cuts them into 416 px tiles with 32 px of overlap, trains
# convnet's detector on the first crop's tiles for EPOCHS epochs (default 60), scores it on the
# second crop's tiles (held out), draws its boxes on the whole held-out crop, and prints the
# numbers. With PEER=1 it then trains the peer, Ultralytics YOLOv8n from scratch, on the same
# tiles for the same epochs (scripts/bench/trees_ultralytics.py, in the Python environment
# $VENV, default /tmp/venv-ref, which needs torch, ultralytics and pycocotools) and scores its
# held-out detections with convnet's own mAP code (`convnet eval-detections`). The table at the
# end has AP@0.5, AP@[.5:.95] and seconds per training epoch of each. Not part of CI.
#
# Everything lands in RUN_DIR (default runs/trees): tiles/ (YOLO layout, coco_{train,val}.json,
# data.yaml), convnet/ (the run), heldout.png, peer/, and each step's JSON (*.json).
# CONVNET names a convnet binary to use instead of building target/release/convnet.
#
#   scripts/trees.sh [RUN_DIR]
#   EPOCHS=5 scripts/trees.sh /tmp/trees-smoke     # a quick look
#   PEER=1 scripts/trees.sh                         # and the Ultralytics peer (3.7 s/epoch on 2 AVX-512 cores)
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."

# Paths given by the caller are taken relative to where they called from.
from_caller() {
    case $1 in
        /*) echo "$1" ;;
        *) echo "$caller/$1" ;;
    esac
}
run=runs/trees
if [ $# -ge 1 ]; then
    run=$(from_caller "$1")
fi
epochs=${EPOCHS:-60}
peer=${PEER:-0}
venv=${VENV:-/tmp/venv-ref}
heldout=third_party/trees/JPEGImages/2019_YELL_2_541000_4977000_image_crop.png
case $epochs in
    '' | *[!0-9]* | 0)
        echo "EPOCHS must be a whole number of at least 1, not '$epochs'" >&2
        exit 1
        ;;
esac

# The first number found at one of the dotted KEYs of a JSON file, formatted with FMT; "n/a"
# when the file or every key is missing. A file whose JSON follows other output is read from
# its first line that opens an object.
json_num() {
    python3 - "$@" <<'EOF'
import json, sys

path, fmt, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    text = open(path).read()
except OSError:
    print("n/a")
    sys.exit()
doc = None
try:
    doc = json.loads(text)
except ValueError:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("{"):
            try:
                doc = json.loads("\n".join(lines[i:]))
                break
            except ValueError:
                pass
for key in keys:
    v = doc
    for k in key.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        print(format(v, fmt))
        sys.exit()
print("n/a")
EOF
}

# How many scored boxes a JSON file holds (objects with a "score"), or "n/a".
json_boxes() {
    python3 - "$1" <<'EOF'
import json, sys

def count(v):
    if isinstance(v, dict):
        return ("score" in v) + sum(count(x) for x in v.values())
    if isinstance(v, list):
        return sum(count(x) for x in v)
    return 0

try:
    print(count(json.load(open(sys.argv[1]))))
except (OSError, ValueError):
    print("n/a")
EOF
}

scripts/fetch-trees.sh

if [ -n "${CONVNET:-}" ]; then
    convnet=$(from_caller "$CONVNET")
    if [ ! -x "$convnet" ]; then
        echo "CONVNET=$CONVNET is not an executable file" >&2
        exit 1
    fi
else
    if ! command -v cargo >/dev/null 2>&1; then
        echo "convnet needs the Rust toolchain (cargo) to build; install it with rustup, or set CONVNET" >&2
        exit 1
    fi
    echo "==> building convnet (release)"
    cargo build --release --locked -p convnet-cli
    convnet=./target/release/convnet
fi

mkdir -p "$run"
echo "==> tiling the crops: 416 px tiles, 32 px overlap -> $run/tiles"
rm -rf "$run/tiles"
"$convnet" dataset tile third_party/trees --tile 416 --overlap 32 -o "$run/tiles"

echo "==> training convnet's detector on the train crop's tiles, $epochs epochs, batch 8"
"$convnet" train --task detect --dataset third_party/trees --tile 416 --overlap 32 --size 416 \
    --epochs "$epochs" --batch 8 --augment default --schedule cosine --out "$run/convnet" --json | tee "$run/convnet-train.json"

# The last epoch's weights, as the peer's last.pt: the held-out tiles are also the validation
# set, so the checkpoint it picked as best would have been chosen on the very tiles scored.
echo "==> scoring its last epoch on the held-out crop's tiles"
"$convnet" eval "$run/convnet/checkpoints/last.ckpt" --json | tee "$run/convnet-eval.json"

echo "==> drawing its boxes on the whole held-out crop, tile by tile -> $run/heldout.png"
"$convnet" detect --model "$run/convnet/checkpoints/last.ckpt" --tile 416 --score 0.1 "$heldout" -o "$run/heldout.png" --json \
    >"$run/heldout.json"

# convnet eval writes its held-out ground truth and detections as COCO JSON beside the run;
# scoring them with eval-detections gives convnet the very definition of AP the peer gets
# (COCO's, at most 100 detections per picture).
convnet_scored=$run/convnet-eval-detections.json
if [ -f "$run/convnet/eval-gt.json" ] && [ -f "$run/convnet/eval-pred.json" ]; then
    "$convnet" eval-detections --gt "$run/convnet/eval-gt.json" --pred "$run/convnet/eval-pred.json" \
        --json >"$convnet_scored"
else
    rm -f "$convnet_scored"
fi

peer_scored=$run/peer-eval-detections.json
peer_note=""
if [ "$peer" = 1 ]; then
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import ultralytics' 2>/dev/null; then
        coco_check=""
        if "$venv/bin/python" -c 'import pycocotools' 2>/dev/null; then
            coco_check=--pycocotools
        fi
        echo "==> the peer: Ultralytics YOLOv8n from scratch on the same tiles, $epochs epochs, 2 threads"
        "$venv/bin/python" scripts/bench/trees_ultralytics.py --data "$run/tiles/data.yaml" \
            --epochs "$epochs" --threads 2 --out "$run/peer" $coco_check
        echo "==> scoring the peer's held-out detections with convnet's mAP code"
        "$convnet" eval-detections --gt "$run/tiles/coco_val.json" --pred "$run/peer/predictions.json" \
            --json | tee "$peer_scored"
    else
        peer_note="peer not run: $venv has no ultralytics (python3 -m venv $venv && $venv/bin/pip install torch torchvision ultralytics pycocotools; or set VENV)"
    fi
fi

echo
echo "tree crowns: the held-out crop's 416 px tiles (2019_YELL_2_541000_4977000, 279 trees), EPOCHS=$epochs"
printf '%-26s %8s %12s %9s   %s\n' "" "AP@0.5" "AP@[.5:.95]" "s/epoch" "scored by"
if [ -f "$convnet_scored" ]; then
    printf '%-26s %8s %12s %9s   %s\n' "convnet" \
        "$(json_num "$convnet_scored" .3f coco.map50)" "$(json_num "$convnet_scored" .3f coco.map)" \
        "$(json_num "$run/convnet-train.json" .1f seconds_per_epoch)" "eval-detections (COCO, 100 per picture)"
else
    printf '%-26s %8s %12s %9s   %s\n' "convnet" \
        "$(json_num "$run/convnet-eval.json" .3f test_map50 map50)" \
        "$(json_num "$run/convnet-eval.json" .3f test_coco_map coco_map)" \
        "$(json_num "$run/convnet-train.json" .1f seconds_per_epoch)" "convnet eval (AP@0.5: VOC all-point)"
fi
if [ -f "$peer_scored" ]; then
    printf '%-26s %8s %12s %9s   %s\n' "Ultralytics YOLOv8n" \
        "$(json_num "$peer_scored" .3f coco.map50)" "$(json_num "$peer_scored" .3f coco.map)" \
        "$(json_num "$run/peer/summary.json" .1f train_s_per_epoch_mean)" "eval-detections (COCO, 100 per picture)"
    if [ -f "$convnet_scored" ]; then
        for key in images objects; do
            a=$(json_num "$convnet_scored" d "$key")
            b=$(json_num "$peer_scored" d "$key")
            if [ "$a" != "$b" ]; then
                echo "warning: convnet was scored on $a held-out $key, the peer on $b: not the same tiles" >&2
            fi
        done
    fi
    pyc50=$(json_num "$run/peer/summary.json" .3f pycocotools.map50)
    if [ "$pyc50" != n/a ]; then
        echo "(the peer by pycocotools: AP@0.5 $pyc50, AP@[.5:.95] $(json_num "$run/peer/summary.json" .3f pycocotools.map))"
    fi
fi
if [ -n "$peer_note" ]; then
    echo "$peer_note"
fi
echo "s/epoch: the mean wall time of a training pass (validation not included), on this machine"
echo
echo "held-out crop with convnet's boxes: $run/heldout.png ($(json_boxes "$run/heldout.json") boxes; $run/heldout.json)"
echo "convnet run:                        $run/convnet"
echo "try:                                $convnet detect --model $run/convnet --tile 416 AERIAL.png -o OUT.png --json"
