#!/usr/bin/env bash
# The CPU's FP32 multiply-add ceiling in GFLOP/s (best of several runs of pure AVX-512 FMA chains
# on THREADS threads), the yardstick issue 10's goals are checked against in BENCHMARKS.md.
#
#   scripts/fma-peak.sh [THREADS]      # default 2
#
# Needs gcc with OpenMP and an AVX-512 CPU. Close other work first. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
bin=${TMPDIR:-/tmp}/convnet-fma-peak
grep -qw avx512f /proc/cpuinfo || { echo "this CPU has no AVX-512" >&2; exit 1; }
gcc -O2 -march=native -fopenmp scripts/bench/fma_peak.c -o "$bin"
OMP_NUM_THREADS=$threads "$bin"
