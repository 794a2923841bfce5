#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser convnet opens user files with (cargo-fuzz, libFuzzer).
#
#   scripts/fuzz.sh seeds                 # write the seed corpora (convnet's own writers + fixtures)
#   scripts/fuzz.sh run TARGET [SECONDS]  # fuzz one target for 600 s or 10 million executions,
#                                         # whichever comes first, growing fuzz/corpus/TARGET
#   scripts/fuzz.sh all [SECONDS]         # every target in turn; prints the table for BENCHMARKS.md
#   scripts/fuzz.sh cmin TARGET           # shrink a corpus to the inputs that add coverage
#
# Needs nightly Rust (`rustup toolchain install nightly`) and cargo-fuzz
# (`cargo +nightly install cargo-fuzz --locked`); stable Rust cannot pass libFuzzer's
# instrumentation flags. Without a sanitizer (`-s none`: convnet forbids unsafe code, so what is
# sought is panics, overflows, hangs and runaway allocation, not memory errors) and with debug
# assertions on, so arithmetic overflow is a crash. A crash's input is copied to
# fuzz/regressions/TARGET/, which crates/fuzzing/tests/replay.rs replays in CI once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(image idx npy spec darknet checkpoint pth safetensors tfjs coco gallery)
# The targets refuse sizes above 1 GiB (convnet_fuzzing::MEMORY_LIMIT) before allocating;
# libFuzzer's RSS limit sits above that, so reaching it means a size escaped the checks.
RSS_MB=2560
RUNS=${RUNS:-10000000}
MAX_LEN=65536

seeds() {
  # Dev builds: the dependencies are optimised there too, and the test suite shares them.
  cargo run --quiet -p convnet-fuzzing --bin fuzz-seeds
  # A real checkpoint: a tiny network trained for one short epoch by the CLI.
  local run
  run=$(mktemp -d)
  cargo build --quiet -p convnet-cli
  target/debug/convnet train --model fixtures/fuzz/tiny-classifier.toml --epochs 1 --limit 64 \
    --test-limit 32 --batch 32 --out "$run" --quiet >/dev/null
  cp "$run/checkpoints/last.ckpt" fuzz/corpus/checkpoint/seed-tiny.ckpt
  rm -rf "$run"
}

run_target() {
  local target=$1 seconds=${2:-600} log
  mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
  log=$(mktemp)
  set +e
  (cd fuzz && cargo +nightly fuzz run -s none -a "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -runs="$RUNS" -rss_limit_mb=$RSS_MB -max_len=$MAX_LEN -timeout=20 \
    -print_final_stats=1) 2>&1 | tee "$log" | grep -E '^#[0-9]+.*(DONE|pulse)|SUMMARY|panicked|Done [0-9]+ runs|ERROR' || true
  set -e
  # Whatever libFuzzer saved as a crash, timeout or out-of-memory input becomes a regression.
  local found=0 f
  for f in fuzz/artifacts/"$target"/*; do
    [ -e "$f" ] || continue
    cp "$f" "fuzz/regressions/$target/" && rm "$f" && found=$((found + 1))
  done
  local runs secs
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || echo "$seconds")
  printf '| %s | %s | %.1f | %s |\n' "$target" "${runs:-0}" "$(echo "${secs:-0} / 60" | bc -l)" "$found"
  rm -f "$log"
}

case "${1:-}" in
  seeds) seeds ;;
  run) run_target "${2:?target}" "${3:-600}" ;;
  all)
    echo "| target | executions | minutes | crashes saved |"
    echo "|---|---:|---:|---:|"
    for t in "${TARGETS[@]}"; do run_target "$t" "${2:-600}" | tail -1; done
    ;;
  cmin) (cd fuzz && cargo +nightly fuzz cmin -s none -a "${2:?target}" "corpus/$2" -- -rss_limit_mb=$RSS_MB -max_len=$MAX_LEN) ;;
  *) sed -n '2,15p' "$0"; exit 2 ;;
esac
