#!/usr/bin/env bash
# Trains the generated-scene detector of BENCHMARKS.md ("Tiny-YOLO on generated scenes") from
# nothing in one go, and scores it on the 500 held-out test scenes: tiny-yolo-wide's backbone
# on Fashion-MNIST's items (4 epochs, ~6-10 minutes on 2 cores), then one cosine schedule over
# SCENES new scenes (default 600,000: ~80 minutes on 2 cores, ~6 GB of memory; the weights are
# saved every 2,000 steps), then `convnet eval` with and without flip test-time augmentation.
# Not part of CI.
#
#   scripts/detector-run.sh [SCENES] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

scenes=${1:-600000}
out=${2:-runs}
convnet=./target/release/convnet

scripts/install-data.sh
cargo build --release --locked -p convnet-cli

if [ ! -f "$out/yolo-wide-backbone/checkpoints/best.ckpt" ]; then
    "$convnet" train --model tiny-yolo-wide-backbone --epochs 4 --batch 64 --augment flip,crop=2 \
        --lr 2e-3 --schedule cosine --seed 0 --out "$out/yolo-wide-backbone"
fi
run="$out/det-wide-$((scenes / 1000))k"
# One pass over scenes it never sees again: 2% of them validate (the best-checkpoint choice).
"$convnet" train --task detect --model tiny-yolo-wide --train-size "$scenes" --val-split 0.02 \
    --epochs 1 --batch 32 --lr 2e-3 --schedule cosine --augment flip --seed 10 \
    --init "$out/yolo-wide-backbone" --save-every 2000 --out "$run"
"$convnet" eval "$run"
"$convnet" eval "$run" --flip-tta
