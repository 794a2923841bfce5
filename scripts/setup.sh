#!/usr/bin/env bash
# Sets convnet up on a fresh Debian machine with the Rust toolchain, then runs the main job.
# Only ordinary clients are used (cargo, and apt-get/npm for data and weights as later parts
# need them); nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "convnet needs the Rust toolchain (cargo); install it with rustup first" >&2
    exit 1
fi

echo "==> building convnet (release)"
cargo build --release --locked -p convnet-cli

echo "==> the main job: what LeNet-5 is made of"
./target/release/convnet summary lenet5
