#!/usr/bin/env bash
# CPU speed, convnet beside PyTorch, in one run on this machine (issue 10): the conv2d shape set
# (forward and forward+backward) and a LeNet-5 training epoch on Fashion-MNIST, both
# frameworks on the same thread count, then the ratios and peak memory.
#
#   scripts/speed-bench.sh [THREADS] [EPOCHS]      # defaults: 2 2
#
# Needs the release binary (cargo build --release -p convnet-cli), Fashion-MNIST
# (scripts/install-data.sh) and the peers' reference scripts (SHARED_BENCH, default
# ../shared/bench); installs PyTorch into its own virtualenv (VENV, default /tmp/venv-ref) if
# missing. Close other work first: both cores matter. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
epochs=${2:-2}
shared=${SHARED_BENCH:-../shared/bench}
venv=${VENV:-/tmp/venv-ref}
work=${TMPDIR:-/tmp}/convnet-speed-bench
convnet=./target/release/convnet
[ -x "$convnet" ] || { echo "build first: cargo build --release -p convnet-cli" >&2; exit 1; }
[ -f "$shared/pytorch/conv_micro_torch.py" ] || { echo "no reference scripts in $shared (set SHARED_BENCH)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch numpy
fi
mkdir -p "$work"
rm -rf "$work/lenet"

echo "conv2d: convnet, then PyTorch ($threads threads)" >&2
RAYON_NUM_THREADS=$threads "$convnet" -q bench conv --json > "$work/conv-convnet.json"
"$venv/bin/python" "$shared/pytorch/conv_micro_torch.py" --threads "$threads" --out "$work/conv-torch.json" > /dev/null
echo "LeNet-5, $epochs epochs: convnet, then PyTorch" >&2
RAYON_NUM_THREADS=$threads /usr/bin/time -f "%M" -o "$work/lenet-convnet.rss" \
    "$convnet" -q train --model lenet5 --epochs "$epochs" --batch 128 --out "$work/lenet" --json \
    > "$work/lenet-convnet.json"
/usr/bin/time -f "%M" -o "$work/lenet-torch.rss" "$venv/bin/python" \
    "$shared/pytorch/train_torch.py" --model lenet --epochs "$epochs" --threads "$threads" \
    --out "$work/lenet-torch.json" > /dev/null

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
ours = {c["name"]: c for c in json.load(open(f"{work}/conv-convnet.json"))["cases"]}
theirs = {c["case"]: c for c in json.load(open(f"{work}/conv-torch.json"))["results"]}
print(f"{'case':14} {'convnet fwd':>12} {'torch fwd':>10} {'speed-up':>9}   {'convnet f+b':>12} {'torch f+b':>10} {'speed-up':>9}")
for name, c in ours.items():
    t = theirs.get(name)
    if t is None:
        continue
    print(f"{name:14} {c['forward_ms']:12.3f} {t['fwd_ms']:10.3f} {t['fwd_ms'] / c['forward_ms']:8.2f}x"
          f"   {c['fwd_bwd_ms']:12.3f} {t['fwdbwd_ms']:10.3f} {t['fwdbwd_ms'] / c['fwd_bwd_ms']:8.2f}x")
text = open(f"{work}/lenet-convnet.json").read()
lenet = json.loads(text[text.index("{"):])
torch = json.load(open(f"{work}/lenet-torch.json"))
ours_s, torch_s = lenet["seconds_per_epoch"], torch["median_epoch_s_2toN"]
rss = [int(open(f"{work}/lenet-{who}.rss").read().split()[-1]) / 1024 for who in ("convnet", "torch")]
print(f"\nLeNet-5 epoch: convnet {ours_s:.2f} s, PyTorch {torch_s:.2f} s (median of epochs 2..N): "
      f"speed-up {torch_s / ours_s:.2f}x; peak RSS {rss[0]:.0f} vs {rss[1]:.0f} MiB")
print("(speed-up = PyTorch time / convnet time; the goal is >= 1.25 everywhere)")
PY
