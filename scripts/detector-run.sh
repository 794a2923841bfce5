#!/usr/bin/env bash
# Trains the generated-scene detector of BENCHMARKS.md ("Tiny-YOLO on generated scenes") from
# nothing in one go, and scores it on the held-out test scenes: tiny-yolo-wide's backbone on
# Fashion-MNIST's items (4 epochs, ~6-10 minutes on 2 cores), then one cosine schedule over
# SCENES new scenes (default 600,000: ~80 minutes on 2 cores, ~6 GB of memory; the weights are
# saved every 2,000 steps), then two more schedules at lower rates over 300,000 and 400,000
# further new scenes (~35 and ~50 minutes; runs 13 and 14), then `convnet eval` of the last on
# the 500 default test scenes and on 5,000, with and without flip test-time augmentation.
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
# Each continuation keeps the previous run's anchors (its head.json) and sees scenes of its own
# seed.
previous=$run
for stage in "300000 5e-4 11" "400000 2.5e-4 12"; do
    read -r n lr seed <<<"$stage"
    next="$run-ft$((n / 1000))k"
    "$convnet" train --task detect --model tiny-yolo-wide --train-size "$n" --val-split 0.02 \
        --epochs 1 --batch 32 --lr "$lr" --schedule cosine --augment flip --seed "$seed" \
        --init "$previous" --save-every 2000 --out "$next"
    previous=$next
done
"$convnet" eval "$previous"
"$convnet" eval "$previous" --flip-tta
"$convnet" eval "$previous" --limit 5000
"$convnet" eval "$previous" --limit 5000 --flip-tta
