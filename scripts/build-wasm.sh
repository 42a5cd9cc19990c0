#!/usr/bin/env bash
# scripts/build-wasm.sh: build crate/ three times, then wasm-opt each module.
#   pkg/simd/     -C target-feature=+simd128   wasm-pack + wasm-bindgen   (target/wasm-simd)
#   pkg/scalar/   no SIMD                      wasm-pack + wasm-bindgen   (target/wasm-scalar)
#   pkg/threads/  SIMD + atomics against an imported shared memory, feature `threads`: plain
#                 exports, no wasm-bindgen (its glue is not used: ts/threads/ instantiates it
#                 on the calling thread and in each worker)              (target/wasm-threads)
# A build is skipped while its output is newer than every input. FORCE=1 rebuilds.
# Usage: scripts/build-wasm.sh [simd|scalar|threads]...   (default: all three)
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

# The threads module. A shared memory must declare its maximum (4 GiB: wasm32's whole range;
# TypeScript may create a smaller one); its initial size is fixed here (1 MiB) because
# TypeScript creates the memory before it instantiates the module. The calling thread's stack is
# 128 KiB (the drivers keep little on it; each worker gets one as large, allocated by the
# caller). Fat LTO is what compiles the prebuilt std objects with atomics: without it wasm-ld
# refuses --shared-memory ("not compiled with 'atomics' or 'bulk-memory' features"); cargo
# applies LTO only to a build of the cdylib alone, hence `cargo rustc --crate-type cdylib`.
THREADS_OUT=pkg/threads/entrograd_threads.wasm
THREADS_RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128 \
-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--initial-memory=1048576 \
-C link-arg=--max-memory=4294967296 -C link-arg=--export=__stack_pointer -C link-arg=-zstack-size=131072"
build_threads() {
  local out=$THREADS_OUT
  if [ "${FORCE:-0}" != 1 ] && ! stale "$out"; then
    log "threads: up to date ($out)"
    return
  fi
  built+=(threads)
  log "threads: cargo rustc --crate-type cdylib (route $ENTROGRAD_WASM_ROUTE, shared memory)"
  local t0=$SECONDS target="$ENTROGRAD_ROOT/target/wasm-threads"
  RUSTFLAGS="$THREADS_RUSTFLAGS" CARGO_TARGET_DIR="$target" \
    cargo rustc -p entrograd-core --lib --crate-type cdylib --release --target wasm32-unknown-unknown \
      --no-default-features --features small-alloc,threads ||
    die "threads: cargo build failed (status $?; its output above)"
  mkdir -p "$(dirname "$out")"
  log "threads: wasm-opt -O3 --enable-simd --enable-threads"
  "$WASM_OPT" -O3 "${BASE_FEATURES[@]}" --enable-simd --enable-threads --strip-debug --strip-producers \
    "$target/wasm32-unknown-unknown/release/${OUT_NAME}.wasm" -o "$out" ||
    die "threads: wasm-opt failed (status $?)"
  log "threads: built in $((SECONDS - t0)) s"
}

# wasm_file VARIANT: the module a variant builds.
wasm_file() {
  if [ "$1" = threads ]; then echo "$THREADS_OUT"; else echo "pkg/$1/${OUT_NAME}_bg.wasm"; fi
}

variants=("$@") built=()
[ ${#variants[@]} -gt 0 ] || variants=(simd scalar threads)
for variant in "${variants[@]}"; do
  case $variant in
    simd) build simd "-C target-feature=+simd128" --enable-simd ;;
    scalar) build scalar "" --disable-simd ;;
    threads) build_threads ;;
    *) die "unknown variant '$variant' (simd, scalar or threads)" ;;
  esac
done

# Checks on each module built now: Node (this one, >= 18) compiles it, the SIMD ones really have
# v128 code and the scalar one has none; the threads one imports a shared memory and nothing else.
for variant in ${built[@]+"${built[@]}"}; do
  f=$(wasm_file "$variant")
  node -e '
    const f = process.argv[1];
    if (!WebAssembly.validate(require("fs").readFileSync(f))) {
      console.error("[build-wasm] ERROR: node " + process.version + " rejects " + f);
      process.exit(1);
    }' "$f"
  if [ -x "$WASM_DIS" ]; then
    n=$("$WASM_DIS" --enable-simd --enable-threads "$f" | grep -c 'v128' || true)
    if [ "$variant" != scalar ] && [ "$n" = 0 ]; then
      die "$f contains no SIMD instruction (was +simd128 applied?)"
    elif [ "$variant" = scalar ] && [ "$n" != 0 ]; then
      die "$f contains SIMD instructions"
    fi
  fi
  if [ "$variant" = threads ]; then
    node -e '
      const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
      const imports = WebAssembly.Module.imports(m).map((i) => i.module + "." + i.name + ":" + i.kind);
      if (imports.join() !== "env.memory:memory") {
        console.error("[build-wasm] ERROR: the threads module imports " + imports.join(", ") + ", not env.memory alone");
        process.exit(1);
      }' "$f" || die "$f: unexpected imports"
  fi
  log "$variant: node $(node --version) compiles it; $n lines with v128 in its disassembly"
done

for variant in "${variants[@]}"; do
  f=$(wasm_file "$variant")
  printf '[build-wasm] %-6s %7d bytes (%d gzipped)  %s\n' "$variant" \
    "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)" "$f"
done
