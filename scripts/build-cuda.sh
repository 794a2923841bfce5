#!/usr/bin/env bash
# Build `convnet` with Burn's CUDA backend, offline.
#
# Burn's `cuda` feature compiles kernels to PTX through LLVM 23 (cubecl-llvm, NVPTX), whose
# build dependency `tracel-llvm-bundler` downloads an LLVM bundle from GitHub. This script
# puts PyPI's static LLVM 23 (mlc-llvm-static, NVPTX included, with a relocatable llvm-config)
# where the bundler looks, with the marker that makes it skip the download, and PyPI's
# libdevice (nvidia-cuda-nvcc-cu12) in a small CUDA-root folder for run time. With
# CUDARC_CUDA_VERSION set, no CUDA toolkit is needed to build; the GPU machine needs only the
# NVIDIA driver (libcuda.so, loaded at run time) and that folder (CUDA_PATH).
#
#   scripts/build-cuda.sh           set up (idempotent), build target/cuda/release/convnet and
#                                   the numeric checks' test binary (cuda_parity)
#   scripts/build-cuda.sh --check   only say whether the prerequisites are there
#   scripts/build-cuda.sh --setup   set up the venv and the LLVM stand-in, do not build
#
# Environment: CONVNET_CUDA_VENV (default target/cuda-venv), CARGO_TARGET_DIR (default
# target/cuda, so the default build's artefacts stay), CUDARC_CUDA_VERSION (default 12090, the
# CUDA 12.9 driver API: set it lower to match an older driver), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# What the bundler expects (tracel-llvm-bundler 23.1.0-4, src/config.rs): the folder
# `<data_local_dir>/tracel/tracel-llvm-<version>-<release>` holding `.tracel-llvm-installed`.
bundle_name=tracel-llvm-23.1.0-4
sentinel=.tracel-llvm-installed
llvm_wheels=(mlc-llvm-static==23.1.1.post0 mlc-llvm-static-extra-targets==23.1.1.post0)
nvcc_wheel='nvidia-cuda-nvcc-cu12==12.9.*'

venv=${CONVNET_CUDA_VENV:-$root/target/cuda-venv}
python=${PYTHON:-python3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda}
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-12090}
# The bundler's data folder, private to this build: nothing is written outside the checkout,
# and a real tracel-llvm install in ~/.local/share is left alone.
export XDG_DATA_HOME=$venv/share
bundle=$XDG_DATA_HOME/tracel/$bundle_name
# CUDA_PATH for run time: cubecl-llvm reads $CUDA_PATH/nvvm/libdevice/libdevice.10.bc.
cuda_root=$CARGO_TARGET_DIR/cuda-root

mode=build
case "${1:-}" in
'') ;;
--check) mode=check ;;
--setup) mode=setup ;;
-h | --help)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*)
    echo "build-cuda.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
esac

site_packages() {
    "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# Whether the venv holds every wheel at the pinned version (so a rerun needs no network).
wheels_installed() {
    [[ -x $venv/bin/python ]] || return 1
    "$venv/bin/python" - "${llvm_wheels[@]}" "$nvcc_wheel" <<'EOF'
import fnmatch, sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if not fnmatch.fnmatch(have, want):
        sys.exit(1)
EOF
}

check() {
    local missing=0
    note() { printf '  %-28s %s\n' "$1" "$2"; }
    echo "prerequisites for the CUDA build:"
    if command -v cargo >/dev/null; then note cargo "$(cargo --version)"; else
        note cargo "MISSING (install the Rust toolchain)"
        missing=1
    fi
    if command -v c++ >/dev/null; then note "c++ (LLVM shims)" "$(command -v c++)"; else
        note "c++ (LLVM shims)" "MISSING (install g++)"
        missing=1
    fi
    if "$python" -c 'import venv, ensurepip' 2>/dev/null; then note "$python" "$("$python" --version 2>&1)"; else
        note "$python" "MISSING or without venv/ensurepip (apt-get install python3-venv)"
        missing=1
    fi
    if wheels_installed; then note "wheels in $venv" "installed"; else
        note "wheels in $venv" "not yet (pip will fetch ${llvm_wheels[*]} $nvcc_wheel, ~520 MB)"
    fi
    if [[ -f $bundle/$sentinel ]]; then note "LLVM stand-in" "$bundle"; else
        note "LLVM stand-in" "not yet linked ($bundle)"
    fi
    if [[ -f $cuda_root/nvvm/libdevice/libdevice.10.bc ]]; then note libdevice "$cuda_root"; else
        note libdevice "not yet copied ($cuda_root)"
    fi
    local free_kb
    free_kb=$(df -Pk "$root" | awk 'NR==2 {print $4}')
    if ((free_kb < 6 * 1024 * 1024)); then
        note disk "only $((free_kb / 1024)) MB free; the venv and the build need ~6 GB"
        missing=1
    else note disk "$((free_kb / 1024 / 1024)) GB free"; fi
    note CARGO_TARGET_DIR "$CARGO_TARGET_DIR"
    note CUDARC_CUDA_VERSION "$CUDARC_CUDA_VERSION"
    return $missing
}

setup() {
    if [[ ! -x $venv/bin/python ]]; then
        "$python" -m venv "$venv"
    fi
    if ! wheels_installed; then
        "$venv/bin/pip" install --disable-pip-version-check -q "${llvm_wheels[@]}" "$nvcc_wheel"
    fi
    local site static libdevice
    site=$(site_packages)
    static=$site/mlc_llvm_static/static
    [[ -x $static/bin/llvm-config ]] || {
        echo "build-cuda.sh: $static/bin/llvm-config is missing; the mlc-llvm-static wheel changed layout" >&2
        exit 1
    }
    "$static/bin/llvm-config" --targets-built | tr ' ' '\n' | grep -qx NVPTX || {
        echo "build-cuda.sh: the LLVM in $static was built without the NVPTX target" >&2
        exit 1
    }
    # The link is the bundle folder itself; the marker goes inside it, that is in the wheel's
    # static/ folder (a file pip does not know of, removed with the venv).
    mkdir -p "$(dirname "$bundle")"
    if [[ -e $bundle && ! -L $bundle ]]; then
        echo "build-cuda.sh: $bundle exists and is not this script's link; remove it or set CONVNET_CUDA_VENV" >&2
        exit 1
    fi
    ln -sfn "$static" "$bundle"
    : >"$bundle/$sentinel"

    libdevice=$site/nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc
    [[ -f $libdevice ]] || {
        echo "build-cuda.sh: $libdevice is missing; the nvidia-cuda-nvcc-cu12 wheel changed layout" >&2
        exit 1
    }
    # A copy, not the wheel's folder: 0.5 MB to carry to the GPU machine instead of the venv.
    mkdir -p "$cuda_root/nvvm/libdevice"
    cp -f "$libdevice" "$cuda_root/nvvm/libdevice/"
    echo "LLVM stand-in: $bundle -> $static"
    echo "libdevice:     $cuda_root/nvvm/libdevice/libdevice.10.bc"
}

case $mode in
check)
    check
    exit
    ;;
setup)
    check || exit 1
    setup
    exit
    ;;
esac

check || exit 1
setup
# The venv's python3 first: the wheel's llvm-config is a Python script (`env python3`).
PATH=$venv/bin:$PATH cargo build --release -p convnet-cli --features cuda
# The numeric checks (CUDA against the CPU) as a test binary that needs no Rust where it runs.
PATH=$venv/bin:$PATH cargo test --release -p convnet-cli --features cuda --test cuda_parity --no-run
bin=$CARGO_TARGET_DIR/release/convnet
cat <<EOF

built $bin ($(du -h "$bin" | cut -f1))
On the GPU machine it needs the NVIDIA driver (libcuda.so, loaded when the device starts) and
libdevice for the math functions CubeCL's kernels call; no CUDA toolkit:

  CUDA_PATH=$cuda_root $bin --device cuda bench conv

(or CUDA_PATH pointing at the nvidia/cuda_nvcc folder of the nvidia-cuda-nvcc-cu12 wheel, or at a
CUDA toolkit). \`scripts/cuda-bench.sh --pack\` gathers the binary, the numeric checks, libdevice
and a slice of Fashion-MNIST for the GPU machine, where \`scripts/cuda-bench.sh\` runs them and
the benchmarks beside PyTorch.
EOF
