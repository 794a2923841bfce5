#!/usr/bin/env bash
# Transfer learning on Fashion-MNIST, as recorded in BENCHMARKS.md: fmnist-cnn pretrained on
# classes 0-4 (all their images), then classes 5-9 learned from only 50 labelled images per
# class, (a) by a new head on the frozen base, (b) then fine-tuning the whole network with a
# small learning rate, against (c) the same network trained from scratch on those images.
# Each seed picks another 50 images per class; every run of one seed sees the same ones.
#
#   scripts/transfer-demo.sh [OUT_DIR] [SEEDS...]      (default: runs/transfer 0 1 2)
#
# Needs the release binary (scripts/setup.sh builds it) and Fashion-MNIST. About 6 minutes for
# the pretraining and 1.5 minutes per seed on 2 cores. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-runs/transfer}
shift || true
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
bin=./target/release/convnet
[ -x "$bin" ] || cargo build --release --locked -p convnet-cli
mkdir -p "$out"

accuracy() { sed -n 's/.*"test_accuracy": \([0-9.]*\).*/\1/p' "$1"; }

few=(--data fashion-mnist --only-classes 5-9 --per-class 50 --classes 5 --batch 32)
if [ ! -f "$out/pretrain/checkpoints/best.ckpt" ]; then
    echo "==> pretraining fmnist-cnn on classes 0-4 (3 epochs)"
    "$bin" -q train --model fmnist-cnn --dataset fashion-mnist --only-classes 0-4 --epochs 3 \
        --batch 128 --seed 0 --out "$out/pretrain" --json >"$out/pretrain.json"
fi
echo "pretrained on classes 0-4: test accuracy $(accuracy "$out/pretrain.json")"

printf '%-6s %-22s %-22s %-22s\n' seed "scratch" "transfer: head only" "transfer: fine-tuned"
for seed in "${seeds[@]}"; do
    "$bin" -q train --model fmnist-cnn --dataset fashion-mnist --only-classes 5-9 --per-class 50 \
        --epochs 30 --batch 32 --seed "$seed" --out "$out/scratch-$seed" --json >"$out/scratch-$seed.json"
    "$bin" -q finetune --base fmnist-cnn --weights "$out/pretrain" "${few[@]}" --epochs 30 --lr 1e-2 \
        --seed "$seed" --out "$out/head-$seed" --json >"$out/head-$seed.json"
    "$bin" -q finetune --base fmnist-cnn --weights "$out/head-$seed" "${few[@]}" --epochs 20 --lr 3e-4 \
        --unfreeze-from conv1 --seed "$seed" --out "$out/tuned-$seed" --json >"$out/tuned-$seed.json"
    printf '%-6s %-22s %-22s %-22s\n' "$seed" "$(accuracy "$out/scratch-$seed.json")" \
        "$(accuracy "$out/head-$seed.json")" "$(accuracy "$out/tuned-$seed.json")"
done
