#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/, libFuzzer with AddressSanitizer)
# for FUZZ_TIME seconds each (default 8), starting from the committed
# corpus. What libFuzzer finds new goes to a scratch directory, not into
# the repository; a crash leaves its input in fuzz/artifacts/TARGET/ and
# fails the run. Needs a nightly toolchain; cargo-fuzz is installed from
# crates.io if missing. Without nightly it says so and exits 0: the stable
# test suite has run every target over its corpus already.
#   scripts/fuzz.sh                       all targets, 8 s each
#   FUZZ_TIME=3600 scripts/fuzz.sh nat    one target for an hour
set -euo pipefail
cd "$(dirname "$0")/.."
time_each="${FUZZ_TIME:-8}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== cargo-fuzz skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "== cargo-fuzz: ${#targets[@]} targets, ${time_each} s each"
cargo +nightly fuzz build >/dev/null 2>&1 || cargo +nightly fuzz build
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  line=$(cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
    -max_total_time="$time_each" -print_final_stats=1 2>&1 | tee "$scratch/$t.log" | grep -E '^stat::number_of_executed_units' || true)
  if grep -qE 'ERROR: libFuzzer|panicked|SUMMARY: AddressSanitizer|deadly signal' "$scratch/$t.log"; then
    tail -40 "$scratch/$t.log"
    echo "fuzz target $t failed: its input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  echo "   $t: ${line##*: } runs"
done
