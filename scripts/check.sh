#!/usr/bin/env bash
# scripts/check.sh: every static check, the ones a reviewer would run (`npm run check`, and the
# first thing `npm test` does). Steps, in order (names as in the output):
#   - biome        Biome over ts/, test/, bench/, scripts/: formatting and lint, warnings fail too
#   - tsc          tsc --noEmit: ts/ and test/ (tsconfig.json), bench/*.mjs (bench/tsconfig.json)
#   - rustfmt      cargo fmt --check, and the libFuzzer target outside the workspace
#   - clippy-host  cargo clippy --all-targets, warnings as errors: native
#   - clippy-wasm  the same for wasm32-unknown-unknown, and the lib with the shipped allocator
#   - clippy-simd  the same with -C target-feature=+simd128
#   - clippy-threads  the threads module's lib (feature threads, +atomics,+simd128)
#   - shellcheck   scripts/*.sh and .ci/run
# Every step runs; each prints its name and time, and a failed run ends with one line naming the
# failed steps. Clippy builds go to target/clippy-*, apart from the test and wasm-pack builds.
# rustfmt and host clippy use rustup's default toolchain; the wasm32 steps use the route
# scripts/env.sh picks. Assumes scripts/setup.sh has run.
# Usage: scripts/check.sh [step]...   (default: all)
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENTROGRAD_ROOT"

STEPS=(biome tsc rustfmt clippy-host clippy-wasm clippy-simd clippy-threads shellcheck)

# The wasm32 steps keep env.sh's toolchain; rustfmt (not in Debian's rustc-web) and host clippy
# take rustup's default.
host() { env -u RUSTUP_TOOLCHAIN "$@"; }

# Runs as an `if` condition, where set -e is off: each command's failure is returned explicitly.
clippy_wasm() {
  local dir=$1 rustflags=$2
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="target/$dir" \
    cargo clippy --all-targets --target wasm32-unknown-unknown -- -D warnings || return 1
  # The shipped modules' allocator (crate/src/heap.rs) only compiles with the feature; the tests
  # install their own allocator, so the feature goes with the lib alone.
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="target/$dir" \
    cargo clippy --lib --features small-alloc --target wasm32-unknown-unknown -- -D warnings
}

run_step() {
  case "$1" in
    biome) biome ci --error-on-warnings . ;;
    tsc) tsc --noEmit && tsc --noEmit -p bench ;;
    rustfmt) host cargo fmt --check && host rustfmt --check --edition 2021 crate/fuzz/fuzz_targets/*.rs ;;
    clippy-host) CARGO_TARGET_DIR=target/clippy-host host cargo clippy --all-targets -- -D warnings ;;
    clippy-wasm) clippy_wasm clippy-wasm "" ;;
    clippy-simd) clippy_wasm clippy-simd "-C target-feature=+simd128" ;;
    clippy-threads)
      # As scripts/build-wasm.sh builds it (its link arguments aside: clippy does not link).
      RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128" CARGO_TARGET_DIR=target/clippy-threads \
        cargo clippy --lib --no-default-features --features small-alloc,threads --target wasm32-unknown-unknown -- -D warnings
      ;;
    shellcheck)
      command -v shellcheck >/dev/null || {
        echo "shellcheck is not on PATH: run scripts/setup.sh" >&2
        return 1
      }
      shellcheck scripts/*.sh .ci/run
      ;;
  esac
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=("${STEPS[@]}")
for s in "${steps[@]}"; do
  case " ${STEPS[*]} " in
    *" $s "*) ;;
    *)
      printf '[check] unknown step %s (steps: %s)\n' "$s" "${STEPS[*]}" >&2
      exit 2
      ;;
  esac
done
failed=()
for s in "${steps[@]}"; do
  printf '[check] %s\n' "$s"
  t0=$SECONDS
  if run_step "$s"; then
    printf '[check] %s ok (%d s)\n' "$s" $((SECONDS - t0))
  else
    printf '[check] %s FAILED (%d s)\n' "$s" $((SECONDS - t0))
    failed+=("$s")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  printf '[check] FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '[check] ok: %s\n' "${steps[*]}"
