#!/usr/bin/env bash
# convnet on CUDA beside PyTorch + cuDNN on the same NVIDIA GPU, in one run (issue 36): first the
# numeric checks (layers and small networks, CUDA against the CPU), then the `bench conv` cases
# forward and forward+backward, LeNet-5 and Fashion-MNIST CNN training steps, ResNet-50 and
# MobileNet v2 inference, tiny-yolo and unet-small training steps; one table of ratios.
#
#   scripts/cuda-bench.sh --pack          here, after scripts/build-cuda.sh: gather what the GPU
#                                         machine needs into target/cuda/carry (64 MiB when measured:
#                                         too large for the device tool's carry with the tree)
#   scripts/cuda-bench.sh [--out DIR]     on the GPU machine: run everything, results in DIR
#                                         (default $OUT, else /tmp/cuda-bench)
#   scripts/cuda-bench.sh --quick ...     fewer epochs and runs (a smoke test of the script)
#
# The GPU machine needs the NVIDIA driver and python3 with torch and torchvision (CUDA build);
# no CUDA toolkit and no Rust. With the device tool: carry target/cuda/carry, run this script.
# Overrides: CONVNET (the binary), PARITY (the numeric-check test binary), CUDA_PATH (a folder
# holding nvvm/libdevice/libdevice.10.bc), CONVNET_DATA (Fashion-MNIST's IDX files), SHARED_BENCH
# (the reference scripts, ../shared/bench), PYTHON (python3), STEP_TIMEOUT (seconds a workload
# may take, default 150). A workload that fails or times out is reported as such; the rest run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
carry=$root/target/cuda/carry

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

# Fashion-MNIST cut to what the runs below read (12,800 training and 1,000 test images), so the
# carried folder stays small; IDX headers rewritten to the new counts.
slice_fmnist() {
    python3 - "$1" "$2" <<'EOF'
import gzip, os, struct, sys
src, dst = sys.argv[1:]
os.makedirs(dst, exist_ok=True)
for stem, keep in [("train-images-idx3-ubyte", 12800), ("train-labels-idx1-ubyte", 12800),
                   ("t10k-images-idx3-ubyte", 1000), ("t10k-labels-idx1-ubyte", 1000)]:
    path = os.path.join(src, stem + ".gz")
    data = gzip.open(path).read() if os.path.exists(path) else open(path[:-3], "rb").read()
    ndim = data[3]
    dims = list(struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim]))
    item = 1
    for d in dims[1:]:
        item *= d
    dims[0] = min(keep, dims[0])
    head = data[:4] + struct.pack(">" + "I" * ndim, *dims)
    body = data[4 + 4 * ndim: 4 + 4 * ndim + dims[0] * item]
    with gzip.open(os.path.join(dst, stem + ".gz"), "wb", compresslevel=9) as f:
        f.write(head + body)
EOF
}

pack() {
    local target=${CARGO_TARGET_DIR:-$root/target/cuda}
    local bin=$target/release/convnet parity
    parity=$(find "$target/release/deps" -maxdepth 1 -type f -executable -name 'cuda_parity-*' \
        -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2-)
    [[ -x $bin ]] || { echo "cuda-bench.sh: no $bin; run scripts/build-cuda.sh first" >&2; exit 1; }
    [[ -n $parity ]] || { echo "cuda-bench.sh: no cuda_parity test binary under $target/release/deps; run scripts/build-cuda.sh first" >&2; exit 1; }
    local shared=${SHARED_BENCH:-../shared/bench}
    [[ -f $shared/pytorch/conv_cases.py ]] || { echo "cuda-bench.sh: no reference scripts in $shared (set SHARED_BENCH)" >&2; exit 1; }
    local data=${CONVNET_DATA:-/usr/share/datasets/fashion-mnist}
    rm -rf "$carry"
    mkdir -p "$carry/bench" "$carry/cuda-root/nvvm/libdevice"
    # Stripped and xz-compressed: the static LLVM makes the binaries large, and the whole tree
    # that travels to the device machine must stay under 64 MiB.
    local name
    for name in convnet cuda_parity; do
        local from=$bin
        [[ $name == cuda_parity ]] && from=$parity
        strip -o "$carry/$name" "$from"
        xz -T0 -9 -f "$carry/$name"
    done
    cp "$target/cuda-root/nvvm/libdevice/libdevice.10.bc" "$carry/cuda-root/nvvm/libdevice/"
    cp "$shared"/pytorch/{conv_cases,train_torch,fmnist}.py "$carry/bench/"
    slice_fmnist "$data" "$carry/fashion-mnist"
    du -sh "$carry"
    echo "carry target/cuda/carry and run: scripts/cuda-bench.sh (results in \$OUT)"
}

# Fail fast, with one line, where no GPU or no CUDA PyTorch is.
require_gpu() {
    if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
        echo "cuda-bench.sh: no NVIDIA GPU here (nvidia-smi finds none); build with scripts/build-cuda.sh, pack with --pack, and run this on the GPU machine" >&2
        exit 3
    fi
    "$python" -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || {
        echo "cuda-bench.sh: $python has no CUDA PyTorch with torchvision" >&2
        exit 3
    }
}

# A binary from the carried folder (decompressed into the work folder), or where it was built.
binary() {
    local name=$1 built=$2
    if [[ -f $carry/$name.xz ]]; then
        "$python" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            "$carry/$name.xz" "$work/$name"
        chmod +x "$work/$name"
        echo "$work/$name"
    else
        echo "$built"
    fi
}

mode=run
quick=0
out=${OUT:-/tmp/cuda-bench}
while (($#)); do
    case $1 in
    --pack) mode=pack ;;
    --quick) quick=1 ;;
    --out)
        [[ $# -ge 2 ]] || { echo "cuda-bench.sh: --out needs a folder" >&2; exit 2; }
        out=$2
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "cuda-bench.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done

if [[ $mode == pack ]]; then
    pack
    exit
fi

python=${PYTHON:-python3}
require_gpu
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/cuda-bench.XXXXXX")
# Every result and log lands in $res; $out gets the summary and one archive of $res (the device
# tool brings back a handful of files from $OUT, not dozens).
res=$work/results
mkdir -p "$res"
convnet=${CONVNET:-$(binary convnet "$root/target/cuda/release/convnet")}
parity=${PARITY:-$(binary cuda_parity "")}
[[ -x $convnet ]] || { echo "cuda-bench.sh: no convnet binary at $convnet (scripts/build-cuda.sh, then --pack)" >&2; exit 1; }
if [[ -z ${CUDA_PATH:-} ]]; then
    for c in "$carry/cuda-root" "$root/target/cuda/cuda-root" /usr/local/cuda; do
        [[ -f $c/nvvm/libdevice/libdevice.10.bc ]] && { export CUDA_PATH=$c; break; }
    done
fi
[[ -f ${CUDA_PATH:-}/nvvm/libdevice/libdevice.10.bc ]] || {
    echo "cuda-bench.sh: no libdevice.10.bc under CUDA_PATH=${CUDA_PATH:-} (set CUDA_PATH)" >&2
    exit 1
}
data=${CONVNET_DATA:-}
for c in "$data" "$carry/fashion-mnist" /usr/share/datasets/fashion-mnist; do
    [[ -n $c && -f $c/train-images-idx3-ubyte.gz ]] && { data=$c; break; }
done
[[ -n $data ]] || { echo "cuda-bench.sh: no Fashion-MNIST (set CONVNET_DATA)" >&2; exit 1; }
ref=${SHARED_BENCH:+$SHARED_BENCH/pytorch}
for c in "$ref" "$carry/bench" ../shared/bench/pytorch; do
    [[ -n $c && -f $c/conv_cases.py ]] && { ref=$c; break; }
done
[[ -f $ref/conv_cases.py ]] || { echo "cuda-bench.sh: no reference scripts (set SHARED_BENCH)" >&2; exit 1; }
timeout_s=${STEP_TIMEOUT:-150}
epochs=3 iters=20
((quick)) && epochs=2 iters=3
peer=("$python" scripts/bench/torch_cuda.py --shared "$ref")
export PYTHONUNBUFFERED=1

nvidia-smi -L | tee "$res/gpu.txt"
"$python" -c 'import torch; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version())' | tee -a "$res/gpu.txt"
echo "convnet: $convnet; CUDA_PATH=$CUDA_PATH; data: $data" | tee -a "$res/gpu.txt"

# `step NAME CMD...`: run one workload under the time limit, its stdout in $res/NAME.out and
# its stderr in $res/NAME.log; a failure is written down and the next workload runs.
failed=()
step() {
    local name=$1
    shift
    echo "== $name" >&2
    if ! timeout "$timeout_s" "$@" >"$res/$name.out" 2>"$res/$name.log"; then
        echo "   $name FAILED or timed out after ${timeout_s}s: $(tail -n 1 "$res/$name.log")" >&2
        failed+=("$name")
        return 1
    fi
}

# 1. Numbers first: no timing means anything if CUDA computes something else.
if [[ -x $parity ]]; then
    step parity "$parity" --test-threads 1 --nocapture || true
    cat "$res/parity.out" "$res/parity.log" >&2 || true
else
    echo "cuda-bench.sh: no cuda_parity binary; numeric checks skipped" >&2
    failed+=(parity-missing)
fi

# 2. Single convolutions.
step conv-convnet "$convnet" --device cuda -q bench conv --json --iters "$iters" || true
step conv-torch "${peer[@]}" conv --iters "$iters" || true

# 3. Training steps: convnet's history.csv gives seconds per epoch (epoch 1 compiles the
# kernels: the median of epochs 2..N counts), divided by the steps; the peer times the same steps.
train() {
    local name=$1 steps=$2 batch=$3 peer_model=$4
    shift 4
    rm -rf "$work/run-$name"
    step "$name-convnet" "$convnet" --device cuda -q train "$@" --data "$data" --epochs "$epochs" \
        --batch "$batch" --val-split 0 --out "$work/run-$name" || true
    [[ -f $work/run-$name/history.csv ]] && cp "$work/run-$name/history.csv" "$res/$name-history.csv"
    echo "$steps $batch" >"$res/$name-steps.txt"
    step "$name-torch" "${peer[@]}" train --model "$peer_model" --batch "$batch" --steps 50 || true
}
train lenet5 100 128 lenet --model lenet5 --limit 12800 --test-limit 1000
train fmnist-cnn 40 128 textbook --model fmnist-cnn --limit 5120 --test-limit 128
train tiny-yolo 32 64 tiny-yolo --task detect --model tiny-yolo --train-size 2048 --test-limit 64
train unet-small 32 64 unet-small --task segment --model unet-small --train-size 2048 --test-limit 64

# 4. Inference at 224x224: convnet's `bench infer` times batch 1 and batch 16.
step infer-convnet "$convnet" --device cuda -q bench infer --json --iters1 "$iters" --iters16 "$iters" || true
step infer-torch "${peer[@]}" infer --batches 1 16 64 --iters "$iters" || true

"$python" - "$res" <<'PY' | tee "$res/summary.txt"
import json, os, statistics, sys
out = sys.argv[1]

def load(name):
    path = os.path.join(out, name + ".out")
    try:
        text = open(path).read()
        return json.loads(text[text.index("{"):])
    except (OSError, ValueError):
        return None

def torch_rows(name):
    # The peer prints one JSON line per result; the last line is not the summary (that goes to --out).
    rows = []
    try:
        for line in open(os.path.join(out, name + ".out")):
            if line.startswith("{"):
                rows.append(json.loads(line))
    except OSError:
        pass
    return rows

def ratio(peer, ours):
    return f"{peer / ours:6.2f}x" if peer and ours else "-"

def num(v, width, places):
    # A missing measurement prints as "-", never as a zero.
    return f"{v:{width}.{places}f}" if v else f"{'-':>{width}}"

print("speed-up = PyTorch time / convnet time (above 1: convnet is faster)\n")
conv, tconv = load("conv-convnet"), {r["case"]: r for r in torch_rows("conv-torch")}
print(f"{'conv case':14} {'convnet fwd ms':>14} {'torch':>8} {'speed-up':>8}   {'convnet f+b ms':>14} {'torch':>8} {'speed-up':>8}")
for c in (conv or {}).get("cases", []):
    t = tconv.get(c["name"], {})
    print(f"{c['name']:14} {c['forward_ms']:14.3f} {num(t.get('fwd_ms'), 8, 3)} {ratio(t.get('fwd_ms'), c['forward_ms']):>8}"
          f"   {c['fwd_bwd_ms']:14.3f} {num(t.get('fwdbwd_ms'), 8, 3)} {ratio(t.get('fwdbwd_ms'), c['fwd_bwd_ms']):>8}")

print(f"\n{'training step':14} {'batch':>5} {'convnet ms':>11} {'torch ms':>9} {'speed-up':>8}")
for name in ("lenet5", "fmnist-cnn", "tiny-yolo", "unet-small"):
    ours = None
    try:
        steps, batch = map(int, open(os.path.join(out, f"{name}-steps.txt")).read().split())
        lines = open(os.path.join(out, f"{name}-history.csv")).read().split("\n")
        col = lines[0].split(",").index("seconds")
        secs = [float(l.split(",")[col]) for l in lines[1:] if l]
        ours = statistics.median(secs[1:] or secs) / steps * 1e3
    except (OSError, ValueError):
        steps = batch = 0
    t = torch_rows(f"{name}-torch")
    theirs = t[-1]["step_ms"] if t else None
    print(f"{name:14} {batch or '-':>5} {num(ours, 11, 2)} {num(theirs, 9, 2)} {ratio(theirs, ours):>8}")

infer, tinf = load("infer-convnet"), torch_rows("infer-torch")
print(f"\n{'inference':14} {'convnet b1 ms':>13} {'torch':>8} {'speed-up':>8}   {'convnet b16 img/s':>17} {'torch':>8} {'ratio':>7}   {'torch b64 img/s':>15}")
for r in (infer or {}).get("results", []):
    by = {t["batch"]: t for t in tinf if t["model"] == r["model"]}
    t1, t16, t64 = (by.get(b, {}) for b in (1, 16, 64))
    print(f"{r['model']:14} {r['b1_median_ms']:13.2f} {num(t1.get('median_ms'), 8, 2)} {ratio(t1.get('median_ms'), r['b1_median_ms']):>8}"
          f"   {r['b16_img_per_s']:17.1f} {num(t16.get('img_per_s'), 8, 1)} {ratio(r['b16_img_per_s'], t16.get('img_per_s')):>7}"
          f"   {num(t64.get('img_per_s'), 15, 1)}")
print("(inference ratio = convnet img/s / torch img/s; convnet's bench infer has no batch 64)")
PY
status=0
if ((${#failed[@]})); then
    echo "cuda-bench.sh: failed or timed out: ${failed[*]}" | tee -a "$res/summary.txt" >&2
    status=1
fi
cp "$res/summary.txt" "$out/"
tar -czf "$out/cuda-bench-results.tar.gz" -C "$work" results
echo "results: $out/summary.txt and $out/cuda-bench-results.tar.gz" >&2
exit $status
