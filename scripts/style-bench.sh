#!/usr/bin/env bash
# Style transfer speed, convnet beside PyTorch, in one run on this machine: the same VGG-19
# (random weights: speed does not depend on them, and no ImageNet weights can be fetched
# here), the same 400-pixel pictures, costs and optimiser, 2 threads each.
#
#   scripts/style-bench.sh [ITERATIONS] [OPTIMIZER]     # defaults: 20 adam
#
# Needs the release binary (cargo build --release -p convnet-cli) and PyTorch in /tmp/venv-ref
# (installed here if missing; see ../shared/bench/README.md); the pictures come from
# scripts/fetch-pretrained.sh. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-20}
optimizer=${2:-adam}
style=/usr/share/darknet/data/scream.jpg
work=${TMPDIR:-/tmp}/convnet-style-bench
mkdir -p "$work"
scripts/fetch-pretrained.sh
if [ ! -x /tmp/venv-ref/bin/python ]; then
    python3 -m venv /tmp/venv-ref
    /tmp/venv-ref/bin/pip install -q torch torchvision numpy pillow
fi
content=third_party/images/china.jpg
convnet=./target/release/convnet
# PyTorch's script leaves two warm-up iterations out of its timing; convnet's includes its
# first iteration, so its figure is if anything a little pessimistic.
RAYON_NUM_THREADS=2 "$convnet" style --content "$content" --style "$style" -o "$work/convnet.png" \
    --untrained --size 400 --iterations "$iterations" --optimizer "$optimizer" --json \
    > "$work/convnet.json"
/tmp/venv-ref/bin/python scripts/bench/style_torch.py --content "$content" --style "$style" \
    --size 400 --iterations "$iterations" --optimizer "$optimizer" --threads 2 > "$work/torch.json"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
c = json.load(open(f"{w}/convnet.json"))
t = json.load(open(f"{w}/torch.json"))
print(f"picture {c['width']}x{c['height']}, {c['iterations']} iterations, {c['optimizer']}")
print(f"convnet: {c['iterations_per_second']:.3f} it/s ({c['evaluations']} evaluations)")
print(f"{t['framework']}: {t['iterations_per_second']:.3f} it/s ({t['evaluations']} evaluations)")
ce = c['evaluations'] / (c['iterations'] / c['iterations_per_second'])
te = t['evaluations'] / t['seconds']
print(f"evaluations per second: convnet {ce:.3f}, PyTorch {te:.3f}, ratio {ce / te:.2f}x")
print(f"ratio convnet / PyTorch: {c['iterations_per_second'] / t['iterations_per_second']:.2f}x")
PY
