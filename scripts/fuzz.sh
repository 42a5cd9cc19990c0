#!/usr/bin/env bash
# scripts/fuzz.sh: the long versions of the fuzzers and property tests (issue 7), on demand.
#   npm run fuzz -- --seconds 600 [--seed N]
# Splits the time between:
#   1. crate/tests/fuzz_abi.rs, the wasm exports' fuzzer, in the simd128 and scalar builds;
#   2. test/fuzz/safetensors.mjs, the safetensors parser's fuzzer (js and wasm-simd models);
#   3. the property tests with many more cases: proptest (wasm simd128) and fast-check (vitest);
#   4. if a nightly toolchain and cargo-fuzz are installed: libFuzzer on the drivers
#      (crate/fuzz, `cargo +nightly fuzz run drivers`). Skipped otherwise.
# A fresh random seed each run unless --seed is given; it is printed, so a failure can be
# replayed. Assumes scripts/setup.sh has run (npm run fuzz runs it first).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENTROGRAD_ROOT"

SECONDS_TOTAL=600
SEED=$(( $(date +%s) % 2147483647 ))
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_TOTAL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    *) echo "usage: npm run fuzz -- [--seconds N] [--seed N]" >&2; exit 2 ;;
  esac
done

log() { printf '[fuzz %4ds] %s\n' "$SECONDS" "$*"; }
LOGS=$(mktemp -d /tmp/entrograd-fuzz.XXXXXX)

# run NAME PATTERN CMD...: runs CMD into a log, shows the lines matching PATTERN, stops on failure.
run() {
  local name=$1 pattern=$2; shift 2
  if "$@" > "$LOGS/$name.log" 2>&1; then
    grep -E "$pattern" "$LOGS/$name.log" || true
  else
    tail -n 60 "$LOGS/$name.log"
    log "$name FAILED (seed $SEED; full log $LOGS/$name.log)"
    exit 1
  fi
}

NIGHTLY=0
if (cd "$HOME" && env -u RUSTUP_TOOLCHAIN cargo +nightly fuzz --version) >/dev/null 2>&1; then NIGHTLY=1; fi
SHARES=$((NIGHTLY ? 5 : 4))
SLICE=$(( SECONDS_TOTAL / SHARES > 10 ? SECONDS_TOTAL / SHARES : 10 ))
log "seed $SEED, $SECONDS_TOTAL s in slices of $SLICE s$([ $NIGHTLY = 1 ] && echo ', with cargo fuzz' || echo ' (no nightly cargo-fuzz: libFuzzer skipped)')"

wasm_test() {
  local variant=$1 rustflags=$2; shift 2
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$ENTROGRAD_ROOT/target/wasm-test-$variant" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p entrograd-core --release --target wasm32-unknown-unknown "$@"
}

# 1. The exports' fuzzer, half the slice per build.
half=$(( SLICE / 2 > 5 ? SLICE / 2 : 5 ))
for v in simd scalar; do
  flags=""; [ $v = simd ] && flags="-C target-feature=+simd128"
  log "fuzz_abi ($v), $half s (replay a failure: ENTROGRAD_FUZZ_SEED=$SEED ENTROGRAD_FUZZ_TRACE=1)"
  ENTROGRAD_FUZZ_SECONDS=$half ENTROGRAD_FUZZ_SEED=$SEED run "fuzz_abi-$v" "fuzz_abi \(|test result" \
    wasm_test $v "$flags" --test fuzz_abi -- --nocapture
done

# 2. The safetensors fuzzer, half the slice per backend.
for be in js wasm; do
  log "safetensors fuzzer ($be models), $half s"
  models=(); [ $be = wasm ] && models=(--wasm)
  run "safetensors-$be" '"fuzz":"safetensors"' node test/fuzz/safetensors.mjs --seconds "$half" --seed "$SEED" ${models[@]+"${models[@]}"}
done

# 3. Property tests with more cases: proptest ~ 400 cases a second, fast-check ~ 700.
cases=$(( SLICE * 400 / 2 > 10000 ? SLICE * 400 / 2 : 10000 ))
log "proptest (wasm simd128): $cases cases per property, seed $SEED"
ENTROGRAD_PROPTEST_CASES=$cases ENTROGRAD_PROPTEST_SEED=$SEED run proptest "^test |test result" \
  wasm_test simd "-C target-feature=+simd128" --test proptest_kernels
runs=$(( SLICE * 700 / 2 / 4 > 10000 ? SLICE * 700 / 2 / 4 : 10000 ))
log "fast-check: $runs runs per property, seed $SEED"
ENTROGRAD_FC_RUNS=$runs ENTROGRAD_FC_SEED=$SEED run fast-check "✓|×|Tests" \
  npx vitest run test/property.kernels.test.ts test/property.model.test.ts test/property.options.test.ts

# 4. libFuzzer on the drivers, when nightly cargo-fuzz is there.
if [ $NIGHTLY = 1 ]; then
  log "cargo +nightly fuzz run drivers, $SLICE s"
  run libfuzzer "^Done|crash|ERROR" bash -c "cd crate/fuzz && env -u RUSTUP_TOOLCHAIN cargo +nightly fuzz run drivers -- -max_total_time=$SLICE -seed=$SEED"
fi
log "done: no failures (seed $SEED)"
