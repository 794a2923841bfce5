#!/usr/bin/env bash
# `convnet serve` under load, beside a FastAPI + uvicorn + PyTorch server of the same classifiers
# (scripts/bench/serve_torch.py), in one run on this machine (issue 31). Loopback only, fixed
# durations: concurrency 1, 4 and 16 against classify (LeNet-5, ResNet-18), detect (Tiny Face
# Detector) and faces on face-api's demo photo, then 10,000 requests at concurrency 16 while the
# server's resident memory is read.
#
#   scripts/serve-bench.sh [SECONDS]         # seconds per level, default 10
#
# Needs the release binary (cargo build --release -p convnet-cli), Fashion-MNIST
# (scripts/install-data.sh), face-api's models (scripts/fetch-pretrained.sh face-api); installs
# PyTorch, FastAPI and uvicorn into VENV (default /tmp/venv-ref) if missing. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
venv=${VENV:-/tmp/venv-ref}
work=${TMPDIR:-/tmp}/convnet-serve-bench
convnet=$PWD/target/release/convnet
photo=$PWD/third_party/face-api/demo/sample1.jpg
port=18080
peer_port=18090
[ -x "$convnet" ] || { echo "build first: cargo build --release -p convnet-cli" >&2; exit 1; }
[ -f "$photo" ] || { echo "run scripts/fetch-pretrained.sh face-api first" >&2; exit 1; }
if ! "$venv/bin/python" -c "import torch, torchvision, fastapi, uvicorn" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q torch torchvision fastapi uvicorn pillow
fi
mkdir -p "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# Wait for a server's /healthz on loopback, at most 120 s.
wait_up() {
    for _ in $(seq 240); do
        curl -sf "http://127.0.0.1:$1/healthz" > /dev/null && return 0
        sleep 0.5
    done
    echo "the server on port $1 did not start" >&2
    exit 1
}

echo "models: LeNet-5 (one epoch of Fashion-MNIST), ResNet-18 (torchvision's initial weights, one file for both servers)" >&2
[ -d "$work/lenet" ] || "$convnet" -q train --model lenet5 --epochs 1 --out "$work/lenet" > /dev/null
[ -f "$work/resnet18.pth" ] || "$venv/bin/python" -c "
import torch, torchvision; torch.manual_seed(0)
torch.save(torchvision.models.resnet18(weights=None).state_dict(), '$work/resnet18.pth')"

load() { # NAME URL [extra flags]: one JSON result file per route
    local name=$1 url=$2; shift 2
    echo "  $name" >&2
    "$convnet" -q bench serve --url "$url" --image "$photo" --duration "$seconds" --json "$@" \
        > "$work/$name.json"
}

echo "convnet serve" >&2
rm -f "$work/faces.sqlite"
"$convnet" serve --port "$port" --model "lenet=$work/lenet" --model "resnet18=resnet18:$work/resnet18.pth" \
    --model tiny=tiny-face --faces --gallery "$work/faces.sqlite" > "$work/serve.log" 2>&1 &
pids+=($!)
server=$!
wait_up "$port"
base=http://127.0.0.1:$port
load convnet-lenet "$base/v1/classify?model=lenet" --pid "$server" --requests 10000
load convnet-resnet18 "$base/v1/classify?model=resnet18" --pid "$server"
load convnet-tiny-face "$base/v1/detect?model=tiny" --pid "$server"
load convnet-faces "$base/v1/faces" --pid "$server"
kill "$server"; wait "$server" 2>/dev/null || true

echo "FastAPI + uvicorn + PyTorch" >&2
(cd scripts/bench && CONVNET_RESNET18="$work/resnet18.pth" exec "$venv/bin/uvicorn" serve_torch:app \
    --host 127.0.0.1 --port "$peer_port" --log-level warning) > "$work/peer.log" 2>&1 &
pids+=($!)
peer=$!
wait_up "$peer_port"
peer_pid=$(pgrep -P "$peer" -f uvicorn || echo "$peer")
base=http://127.0.0.1:$peer_port
load torch-lenet "$base/v1/classify?model=lenet" --pid "$peer_pid" --requests 10000
load torch-resnet18 "$base/v1/classify?model=resnet18" --pid "$peer_pid"

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def read(name):
    try:
        return json.load(open(f"{work}/{name}.json"))
    except FileNotFoundError:
        return None
def ms(v):
    return "-" if v is None else f"{v:.1f}"
print("| route | server | concurrency | req/s | p50 ms | p99 ms | failed | shed (503) |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for route, names in [("classify LeNet-5", ["convnet-lenet", "torch-lenet"]),
                     ("classify ResNet-18", ["convnet-resnet18", "torch-resnet18"]),
                     ("detect Tiny Face Detector", ["convnet-tiny-face"]),
                     ("faces (SSD + landmarks + encodings)", ["convnet-faces"])]:
    for name in names:
        r = read(name)
        if r is None:
            continue
        server = "convnet serve" if name.startswith("convnet") else "FastAPI + PyTorch"
        for l in r["levels"]:
            print(f"| {route} | {server} | {l['concurrency']} | {l['requests_per_second']:.1f} | "
                  f"{ms(l['p50_ms'])} | {ms(l['p99_ms'])} | {l['failed']} | {l['shed_503']} |")
print()
for name in ["convnet-lenet", "torch-lenet"]:
    r = read(name)
    if r and r.get("soak"):
        s = r["soak"]
        print(f"{name}: {s['requests']} requests at concurrency {s['concurrency']}, {s['failed']} failed, "
              f"{s['shed_503']} shed; resident memory {s['rss_after_tenth_mib']:.0f} MiB after the first "
              f"tenth, {s['rss_end_mib']:.0f} MiB at the end ({s['growth_percent']:+.1f}%)")
print()
for route, a, b in [("LeNet-5", "convnet-lenet", "torch-lenet"), ("ResNet-18", "convnet-resnet18", "torch-resnet18")]:
    ra, rb = read(a), read(b)
    if ra and rb:
        for la, lb in zip(ra["levels"], rb["levels"]):
            ratio = la["requests_per_second"] / lb["requests_per_second"] if lb["requests_per_second"] else float("nan")
            p99 = "no worse" if (la["p99_ms"] or 0) <= (lb["p99_ms"] or 0) else "worse"
            print(f"{route} at concurrency {la['concurrency']}: convnet {ratio:.2f}x the peer's req/s, p99 {p99}")
PY
