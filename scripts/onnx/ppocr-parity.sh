#!/usr/bin/env bash
# PP-OCRv4 through convnet's ONNX importer, checked against ONNX Runtime on the same arrays, and
# the text detector's map drawn over a photo of handwritten text with `convnet segment`.
#
#   scripts/onnx/ppocr-parity.sh [OUT_DIR]      # default runs/onnx-ppocr
#
# VENV (default /tmp/venv-ref) needs onnxruntime, numpy and pillow; CONVNET overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/onnx-ppocr}
venv=${VENV:-/tmp/venv-ref}
scripts/fetch-pretrained.sh onnx
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import onnxruntime, numpy, PIL" 2>/dev/null ||
    "$venv/bin/pip" install -q onnxruntime numpy pillow
if [ -z "${CONVNET:-}" ]; then
    cargo build --release --locked -p convnet-cli
    CONVNET=target/release/convnet
fi
mkdir -p "$out"
"$venv/bin/python" scripts/onnx/ppocr_parity.py "$CONVNET" third_party/rapidocr third_party/images/text.png "$out"
echo "==> convnet segment: the detector's text map over the photo"
"$CONVNET" segment --model third_party/rapidocr/ch_PP-OCRv4_det_infer.onnx third_party/images/text.png \
    --preprocess tf --size 736 --threshold 0.3 --labels scripts/onnx/text-labels.txt \
    -o "$out/text-mask.png" --overlay "$out/text-overlay.png"
