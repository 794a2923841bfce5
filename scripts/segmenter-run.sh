#!/usr/bin/env bash
# Trains the generated-scene segmenter of BENCHMARKS.md ("A U-Net over the trained detector")
# and scores it on the held-out test scenes: unet-tiny-yolo-wide, its contracting path filled
# from a trained tiny-yolo-wide detector (scripts/detector-run.sh makes one; ~3 hours on 2
# cores), one cosine schedule over SCENES new 64x64 scenes (default 360,000: ~85 minutes on 2
# cores, ~3 GB of memory; the weights are saved every 2,000 steps), then `convnet eval` on the
# 500 default test scenes and on 5,000, with and without flip test-time augmentation.
# Not part of CI.
#
#   scripts/segmenter-run.sh DETECTOR_RUN [SCENES] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

detector=${1:?usage: scripts/segmenter-run.sh DETECTOR_RUN [SCENES] [OUT_DIR]}
scenes=${2:-360000}
out=${3:-runs}
convnet=./target/release/convnet

scripts/install-data.sh
cargo build --release --locked -p convnet-cli

run="$out/seg-yolo-$((scenes / 1000))k"
# One pass over scenes it never sees again: 2% of them validate (the best-checkpoint choice).
"$convnet" train --task segment --model unet-tiny-yolo-wide --init "$detector" \
    --train-size "$scenes" --val-split 0.02 --epochs 1 --batch 16 --augment flip,shift=4 \
    --lr 2e-3 --loss ce+dice --schedule cosine --seed 0 --save-every 2000 --out "$run"
"$convnet" eval "$run"
"$convnet" eval "$run" --flip-tta
"$convnet" eval "$run" --limit 5000
"$convnet" eval "$run" --limit 5000 --flip-tta
