#!/usr/bin/env bash
# Regenerates the reference outputs of face-api.js itself (@vladmandic/face-api@1.7.15 on
# @tensorflow/tfjs@4.22.0, cpu backend, float32), against which convnet's Rust ports of its
# networks are checked. See fixtures/face/README.md for what the files hold.
#
# - fixtures/face/reference-same-pixels.json: every network (Tiny Face Detector at 416 and
#   608, SsdMobilenetv1, FaceLandmark68Net, FaceRecognitionNet) on the RGB bytes convnet's own
#   decoder gives for the six demo photos: the `face_rgb` example of crates/face writes them
#   raw, and node builds the tfjs tensor from those bytes (no JPEG decoder in between);
# - fixtures/face/reference.json: SSD, landmarks and recognition on the demo photos as
#   jpeg-js decodes them (a second decoder: what changes with other pixels), and the networks
#   alone on synthetic pictures.
#
#   scripts/face-reference.sh
#
# Needs node (>= 18) and npm with access to the npm registry; nothing else is downloaded
# (the pure-JS tfjs cpu backend is used, no native tfjs-node binaries). The npm packages
# go into target/face-reference/ (ignored by git). Weights come from
# third_party/face-api/model (fetched by `scripts/fetch-pretrained.sh face-api` if missing).
# Not part of CI: its output, fixtures/face/reference.json, is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f third_party/face-api/model/ssd_mobilenetv1_model-weights_manifest.json ] \
    || [ ! -f third_party/face-api/demo/sample1.jpg ]; then
    scripts/fetch-pretrained.sh face-api
fi

dir=target/face-reference
mkdir -p "$dir"
# Exact versions: face-api 1.7.15 was built against tfjs 4.22.0 (its package.json
# devDependencies, dist/tfjs.version.js); its node-wasm build requires @tensorflow/tfjs and
# @tensorflow/tfjs-backend-wasm, and the script then switches to the cpu backend.
cat > "$dir/package.json" <<'JSON'
{
  "name": "face-reference",
  "private": true,
  "dependencies": {
    "@vladmandic/face-api": "1.7.15",
    "@tensorflow/tfjs": "4.22.0",
    "@tensorflow/tfjs-backend-wasm": "4.22.0",
    "jpeg-js": "0.4.4"
  }
}
JSON
if [ ! -f "$dir/node_modules/@vladmandic/face-api/package.json" ] \
    || [ ! -f "$dir/node_modules/jpeg-js/package.json" ] \
    || [ ! -f "$dir/node_modules/@tensorflow/tfjs-backend-wasm/package.json" ]; then
    echo "==> npm install into $dir"
    (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error)
fi

# The debug profile, as the tests decode with (the checksum in the JSON pins the bytes).
echo "==> the demo photos' RGB bytes as convnet decodes them"
cargo run --quiet -p convnet-face --example face_rgb -- "$dir/rgb" \
    third_party/face-api/demo/sample{1,2,3,4,5,6}.jpg

echo "==> running fixtures/face/make_reference.mjs"
NODE_PATH="$PWD/$dir/node_modules" FACE_REF_NODE_MODULES="$PWD/$dir/node_modules" \
    node fixtures/face/make_reference.mjs third_party/face-api fixtures/face/reference.json \
    --same-pixels "$dir/rgb" fixtures/face/reference-same-pixels.json
ls -l fixtures/face/reference.json fixtures/face/reference-same-pixels.json
