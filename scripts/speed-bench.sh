#!/usr/bin/env bash
# CPU speed, convnet beside PyTorch, in one run on this machine (issue 10): the conv2d shape set
# (forward and forward+backward), a LeNet-5 training epoch on Fashion-MNIST, 40 training steps of
# the Fashion-MNIST CNN, and ResNet-50 / MobileNet v2 inference (with ONNX Runtime as well), all
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
"$venv/bin/python" -c "import torchvision, onnxruntime, onnx" 2>/dev/null ||
    "$venv/bin/pip" install -q torchvision onnxruntime onnx
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
echo "Fashion-MNIST CNN, 40 steps x $epochs epochs: convnet, then PyTorch" >&2
rm -rf "$work/fmnist-cnn"
RAYON_NUM_THREADS=$threads "$convnet" -q train --model fmnist-cnn --epochs "$epochs" --batch 128 \
    --limit 5120 --val-split 0 --test-limit 128 --out "$work/fmnist-cnn" --json \
    > "$work/cnn-convnet.json"
"$venv/bin/python" "$shared/pytorch/train_torch.py" --model textbook --epochs "$epochs" \
    --max-steps 40 --threads "$threads" --out "$work/cnn-torch.json" > /dev/null
echo "inference, ResNet-50 and MobileNet v2: convnet, PyTorch, ONNX Runtime" >&2
RAYON_NUM_THREADS=$threads "$convnet" -q bench infer --json > "$work/infer-convnet.json"
"$venv/bin/python" "$shared/pytorch/infer_torch.py" --models resnet50 mobilenet_v2 \
    --threads "$threads" --out "$work/infer-torch.json" > /dev/null
"$venv/bin/python" "$shared/pytorch/infer_ort.py" --threads "$threads" \
    --out "$work/infer-ort.json" > /dev/null 2>&1

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
def json_in(path):
    text = open(path).read()
    return json.loads(text[text.index("{"):])

def median_after_first(history):
    # As the PyTorch script: the median of epochs 2..N (the first warms up).
    times = sorted(h["seconds"] for h in (history[1:] or history))
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2

lenet = json_in(f"{work}/lenet-convnet.json")
torch = json.load(open(f"{work}/lenet-torch.json"))
ours_s, torch_s = median_after_first(lenet["history"]), torch["median_epoch_s_2toN"]
rss = [int(open(f"{work}/lenet-{who}.rss").read().split()[-1]) / 1024 for who in ("convnet", "torch")]
print(f"\nLeNet-5 epoch: convnet {ours_s:.2f} s, PyTorch {torch_s:.2f} s (median of epochs 2..N): "
      f"speed-up {torch_s / ours_s:.2f}x; peak RSS {rss[0]:.0f} vs {rss[1]:.0f} MiB")
cnn = json_in(f"{work}/cnn-convnet.json")
cnn_ms = median_after_first(cnn["history"]) / 40 * 1e3
cnn_torch = json.load(open(f"{work}/cnn-torch.json"))["median_ms_per_step_2toN"]
print(f"Fashion-MNIST CNN step (batch 128): convnet {cnn_ms:.1f} ms, PyTorch {cnn_torch:.1f} ms: "
      f"speed-up {cnn_torch / cnn_ms:.2f}x")
print("(speed-up = PyTorch time / convnet time; the goal is >= 1.25 everywhere)")

infer = {r["model"]: r for r in json_in(f"{work}/infer-convnet.json")["results"]}
peers = {name: {r["model"]: r for r in json.load(open(f"{work}/infer-{name}.json"))["results"]}
         for name in ("torch", "ort")}
print(f"\n{'inference':14} {'convnet b1 ms':>14} {'torch':>8} {'ORT':>8}   {'convnet b16 img/s':>18} {'torch':>8} {'ORT':>8}")
for name, r in infer.items():
    t, o = peers["torch"][name], peers["ort"][name]
    print(f"{name:14} {r['b1_median_ms']:14.2f} {t['b1_median_ms']:8.2f} {o['b1_median_ms']:8.2f}"
          f"   {r['b16_img_per_s']:18.2f} {t['b16_img_per_s']:8.2f} {o['b16_img_per_s']:8.2f}")
print("(inference goal: at least ONNX Runtime's speed at batch 1 and 16)")
PY
