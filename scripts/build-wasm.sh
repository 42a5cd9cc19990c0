#!/usr/bin/env bash
# scripts/build-wasm.sh: build crate/ twice with wasm-pack + wasm-bindgen, then wasm-opt each module.
#   pkg/simd/    -C target-feature=+simd128   (target/wasm-simd)
#   pkg/scalar/  no SIMD                      (target/wasm-scalar)
# A build is skipped while its output is newer than every input. FORCE=1 rebuilds.
# Usage: scripts/build-wasm.sh [simd|scalar]...   (default: both)
# Needs what scripts/setup.sh installs (wasm32 target, wasm-pack, wasm-bindgen, npm binaryen).
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENTROGRAD_ROOT"

log() { printf '[build-wasm] %s\n' "$*"; }
die() { printf '[build-wasm] ERROR: %s\n' "$*" >&2; exit 1; }

[ -f crate/Cargo.toml ] || die "crate/Cargo.toml not found"
command -v wasm-pack >/dev/null || die "wasm-pack not on PATH: run scripts/setup.sh"
command -v wasm-bindgen >/dev/null || die "wasm-bindgen not on PATH: run scripts/setup.sh"
WASM_OPT="$ENTROGRAD_ROOT/node_modules/.bin/wasm-opt"
WASM_DIS="$ENTROGRAD_ROOT/node_modules/.bin/wasm-dis"
[ -x "$WASM_OPT" ] || die "node_modules/.bin/wasm-opt missing: run npm ci (scripts/setup.sh does)"

OUT_NAME=entrograd_core
# Everything a module is built from. A change to any of these rebuilds it.
inputs=(crate Cargo.toml scripts/build-wasm.sh scripts/env.sh)
for f in Cargo.lock .cargo rust-toolchain rust-toolchain.toml; do
  [ -e "$f" ] && inputs+=("$f")
done

# wasm-opt gets an explicit list of features (not the module's own target_features section): the
# features of rustc's default wasm32 CPU, all of which Node >= 18 runs, plus simd128 for the SIMD
# build. Anything else in a module (relaxed-simd above all: Node 20 refuses a module that contains
# one such opcode) makes wasm-opt fail instead of passing through.
BASE_FEATURES=(--mvp-features --enable-sign-ext --enable-mutable-globals
  --enable-nontrapping-float-to-int --enable-bulk-memory --enable-bulk-memory-opt
  --enable-multivalue --enable-reference-types --enable-call-indirect-overlong)

# stale OUTPUT: true when OUTPUT is missing or an input is newer.
stale() {
  [ -f "$1" ] || return 0
  # crate/tests and crate/benches do not go into the module.
  [ -n "$(find "${inputs[@]}" \( -path crate/tests -o -path crate/benches -o -path crate/target \) -prune \
    -o -newer "$1" -print -quit 2>/dev/null)" ]
}

# build VARIANT RUSTFLAGS WASM_OPT_SIMD_FLAG
build() {
  local variant=$1 rustflags=$2 simd_flag=$3
  local out="pkg/$variant/${OUT_NAME}_bg.wasm"
  if [ "${FORCE:-0}" != 1 ] && ! stale "$out"; then
    log "$variant: up to date ($out)"
    return
  fi
  built+=("$variant")
  log "$variant: wasm-pack build (route $ENTROGRAD_WASM_ROUTE, RUSTFLAGS='$rustflags')"
  local t0=$SECONDS
  # --mode no-install: use the wasm-bindgen on PATH, never download one.
  # --no-opt: wasm-opt runs below, from npm's binaryen (also off in the crate's metadata).
  RUSTFLAGS="$rustflags" CARGO_TARGET_DIR="$ENTROGRAD_ROOT/target/wasm-$variant" \
    wasm-pack --log-level warn build crate --release --target web --mode no-install --no-opt \
      --no-pack --out-name "$OUT_NAME" --out-dir "../pkg/$variant" -- --features small-alloc ||
    die "$variant: wasm-pack build failed (status $?; its output above)"
  log "$variant: wasm-opt -O3 $simd_flag"
  "$WASM_OPT" -O3 "${BASE_FEATURES[@]}" "$simd_flag" --strip-debug --strip-producers \
    "$out" -o "$out.tmp" || die "$variant: wasm-opt failed on $out (status $?)"
  mv "$out.tmp" "$out"
  log "$variant: built in $((SECONDS - t0)) s"
}

variants=("$@") built=()
[ ${#variants[@]} -gt 0 ] || variants=(simd scalar)
for variant in "${variants[@]}"; do
  case $variant in
    simd) build simd "-C target-feature=+simd128" --enable-simd ;;
    scalar) build scalar "" --disable-simd ;;
    *) die "unknown variant '$variant' (simd or scalar)" ;;
  esac
done

# Checks on each module built now: Node (this one, >= 18) compiles it, the SIMD one really has
# v128 code and the scalar one has none.
for variant in ${built[@]+"${built[@]}"}; do
  f="pkg/$variant/${OUT_NAME}_bg.wasm"
  node -e '
    const f = process.argv[1];
    if (!WebAssembly.validate(require("fs").readFileSync(f))) {
      console.error("[build-wasm] ERROR: node " + process.version + " rejects " + f);
      process.exit(1);
    }' "$f"
  if [ -x "$WASM_DIS" ]; then
    n=$("$WASM_DIS" --enable-simd "$f" | grep -c 'v128' || true)
    if [ "$variant" = simd ] && [ "$n" = 0 ]; then
      die "$f contains no SIMD instruction (was +simd128 applied?)"
    elif [ "$variant" = scalar ] && [ "$n" != 0 ]; then
      die "$f contains SIMD instructions"
    fi
  fi
  log "$variant: node $(node --version) compiles it; $n lines with v128 in its disassembly"
done

for variant in "${variants[@]}"; do
  f="pkg/$variant/${OUT_NAME}_bg.wasm"
  printf '[build-wasm] %-6s %7d bytes (%d gzipped)  %s\n' "$variant" \
    "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)" "$f"
done
