#!/usr/bin/env bash
# Builds the convnet binary and checks `convnet export` against ONNX Runtime for every zoo
# family (scripts/onnx/check_export.py; extra arguments go to it, e.g. --run runs/lenet).
# PYTHON names an interpreter with numpy, onnx, onnxruntime and torch.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p convnet-cli
exec "${PYTHON:-python3}" scripts/onnx/check_export.py target/debug/convnet "$@"
