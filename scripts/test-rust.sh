#!/usr/bin/env bash
# scripts/test-rust.sh: the crate's tests, in three builds.
#   host    cargo test                                  scalar kernels, drivers (native)
#   wasm    cargo test --target wasm32 under Node       scalar kernels, drivers and exports
#   simd    the same with -C target-feature=+simd128    scalar AND SIMD128 kernels against the
#                                                       same reference, bit-equality of the two
# The wasm tests run through wasm-bindgen-test-runner (wasm-bindgen-cli 0.2.130) as cargo's
# runner; they need libtest in the wasm32 sysroot (scripts/setup.sh builds it with
# -Zbuild-std=std,panic_abort,test). Assumes the set-up has run.
# Usage: scripts/test-rust.sh [host|wasm|simd]...   (default: all three)
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENTROGRAD_ROOT"

log() { printf '[test-rust] %s\n' "$*"; }
die() { printf '[test-rust] ERROR: %s\n' "$*" >&2; exit 1; }

wasm_test() {
  local variant=$1 rustflags=$2
  command -v wasm-bindgen-test-runner >/dev/null || die "wasm-bindgen-test-runner not on PATH: run scripts/setup.sh"
  command -v node >/dev/null || die "node not on PATH"
  log "$variant: cargo test --target wasm32-unknown-unknown (route $ENTROGRAD_WASM_ROUTE, RUSTFLAGS='$rustflags')"
  # Release: the SIMD kernels are what ships, and debug wasm runs the reference loops slowly.
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$ENTROGRAD_ROOT/target/wasm-test-$variant" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p entrograd-core --release --target wasm32-unknown-unknown --tests ||
    die "$variant: cargo test --target wasm32-unknown-unknown failed (status $?; its output above)"
  # The exports again with the shipped modules' allocator (tests/step.rs installs its own, so
  # only tests/abi.rs can take the feature).
  log "$variant: tests/abi.rs with --features small-alloc"
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$ENTROGRAD_ROOT/target/wasm-test-$variant" \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test -p entrograd-core --release --target wasm32-unknown-unknown --test abi --features small-alloc ||
    die "$variant: cargo test --test abi --features small-alloc failed (status $?; its output above)"
}

variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(host wasm simd)
for v in "${variants[@]}"; do
  case "$v" in
    host)
      log "host: cargo test"
      cargo test -p entrograd-core || die "host: cargo test failed (status $?; its output above)"
      ;;
    wasm) wasm_test scalar "" ;;
    simd) wasm_test simd "-C target-feature=+simd128" ;;
    *) die "unknown variant '$v' (host, wasm, simd)" ;;
  esac
done
log "ok: ${variants[*]}"
