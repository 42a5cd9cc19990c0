#!/usr/bin/env bash
# scripts/setup.sh: make this machine able to build and test entrograd, then build it.
# Idempotent: each step checks first and installs only what is missing, so a second run takes
# seconds. Run from anywhere: `bash scripts/setup.sh` (npm test / npm start run it for you).
#
#   1. wasm32 toolchain: rustup's, if its active toolchain has wasm32-unknown-unknown; otherwise
#      Debian's rustc-web + a wasm32 sysroot built here + lld-22 (shared/TOOLCHAIN.md).
#   2. wasm-bindgen-cli at exactly the version crate/Cargo.toml pins, and wasm-pack (cargo install).
#   3. npm ci (typescript, tsup, vitest, binaryen's wasm-opt) when node_modules is missing or stale.
#   4. scripts/build-wasm.sh, then the TypeScript build (npm run build) when dist/ is stale.
#   5. Python's safetensors and numpy (pip) for test/python.test.ts, when missing.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENTROGRAD_ROOT"

log() { printf '[setup %4ds] %s\n' "$SECONDS" "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install system packages"
  SUDO=sudo
fi

# Host cargo for `cargo install`: the default rustup toolchain, never deb-web, outside the repo
# (so no toolchain file applies).
host_cargo() { (cd "$HOME" && env -u RUSTUP_TOOLCHAIN cargo "$@"); }

# Another `cargo install NAME` already running (a second shell, an earlier session): wait for it
# instead of building the same thing twice at once.
wait_for_cargo_install() {
  local name=$1 waited=0
  while pgrep -f "cargo install $name( |\$)" >/dev/null 2>&1; do
    [ $waited = 0 ] && log "waiting for a running 'cargo install $name' to finish"
    waited=1
    sleep 5
  done
}

# --- 0. the basics this script cannot install ------------------------------------------------------
command -v node >/dev/null || die "node not found: install Node.js >= 18"
command -v npm >/dev/null || die "npm not found"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
  die "Node.js >= 18 needed, found $(node --version)"
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
log "node $(node --version), npm $(npm --version), host $(host_cargo --version)"

# --- 1. wasm32 toolchain ---------------------------------------------------------------------------
DEB_PACKAGES=(rustc-web cargo-web rust-web-src lld-22)
SYSROOT_LIB=/usr/lib/rustlib/wasm32-unknown-unknown/lib
NO_TEST_MARK="$SYSROOT_LIB/.entrograd-no-libtest"

apt_missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

ensure_deb_packages() {
  local missing
  missing=$(apt_missing "${DEB_PACKAGES[@]}" | tr '\n' ' ')
  if [ -z "${missing// /}" ]; then
    log "debian packages present: ${DEB_PACKAGES[*]}"
    return
  fi
  command -v apt-get >/dev/null || die "missing ${missing}and no apt-get: use rustup's wasm32 target instead"
  # apt-get update only when the package lists do not know a package, or the install fails.
  local p
  for p in $missing; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      log "apt-get update (the package lists do not know $p)"
      $SUDO apt-get update -qq
      break
    fi
  done
  log "apt-get install $missing"
  # shellcheck disable=SC2086
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; then
    log "install failed; apt-get update and retry"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  fi
}

# True when Debian's rustc can compile for wasm32 against the sysroot there (std, and test unless
# an earlier build found that test cannot be built). Catches a sysroot left by an older rustc.
sysroot_ok() {
  compgen -G "$SYSROOT_LIB/libstd-*.rlib" >/dev/null || return 1
  local src='pub fn f(x: u32) -> u32 { std::hint::black_box(x) }'
  if [ ! -e "$NO_TEST_MARK" ]; then
    compgen -G "$SYSROOT_LIB/libtest-*.rlib" >/dev/null || return 1
    src=$'#![feature(test)]\nextern crate test;\n'"$src"
  fi
  local tmp
  tmp=$(mktemp -d)
  printf '%s\n' "$src" > "$tmp/probe.rs"
  RUSTC_BOOTSTRAP=1 /usr/bin/rustc --edition 2021 --target wasm32-unknown-unknown \
    --crate-type rlib -o "$tmp/libprobe.rlib" "$tmp/probe.rs" >/dev/null 2>&1
  local rc=$?
  rm -rf "$tmp"
  return $rc
}

# build_sysroot CRATES: -Zbuild-std=CRATES in a throw-away crate, rlibs copied into the sysroot.
build_sysroot() {
  local crates=$1 dir
  dir=$(mktemp -d /tmp/entrograd-sysroot.XXXXXX)
  mkdir -p "$dir/src" "$dir/.cargo"
  printf '[package]\nname = "sysroot-build"\nversion = "0.0.0"\nedition = "2021"\n[profile.release]\nopt-level = 3\npanic = "abort"\n' \
    > "$dir/Cargo.toml"
  : > "$dir/src/lib.rs"
  # std's own dependencies are vendored with its sources: this replacement is for this build only.
  printf '[source.crates-io]\nreplace-with = "std-vendor"\n[source.std-vendor]\ndirectory = "/usr/lib/rustlib/src/rust/library/vendor"\n' \
    > "$dir/.cargo/config.toml"
  log "building the wasm32 sysroot (-Zbuild-std=$crates; about a minute)"
  if ! (cd "$dir" && env -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        RUSTFLAGS="-C embed-bitcode=yes -Z force-unstable-if-unmarked" \
        /usr/bin/cargo build --quiet --release --offline --target wasm32-unknown-unknown \
          -Zbuild-std="$crates") > "$dir/build.log" 2>&1; then
    tail -n 30 "$dir/build.log" >&2
    rm -rf "$dir"
    return 1
  fi
  $SUDO mkdir -p "$SYSROOT_LIB"
  $SUDO rm -f "$SYSROOT_LIB"/lib*.rlib "$NO_TEST_MARK"
  $SUDO cp "$dir"/target/wasm32-unknown-unknown/release/deps/lib*.rlib "$SYSROOT_LIB/"
  $SUDO rm -f "$SYSROOT_LIB"/libsysroot_build*
  rm -rf "$dir"
}

ensure_sysroot() {
  if sysroot_ok; then
    log "wasm32 sysroot present ($SYSROOT_LIB$([ -e "$NO_TEST_MARK" ] && echo ', without libtest'))"
    return
  fi
  # libtest is for wasm-bindgen-test; the std alone is enough to build the package.
  if build_sysroot std,panic_abort,test && sysroot_ok; then
    log "wasm32 sysroot built with std, panic_abort, test"
  else
    log "building with test failed; building std,panic_abort only"
    build_sysroot std,panic_abort || die "cannot build the wasm32 sysroot"
    $SUDO touch "$NO_TEST_MARK"
    sysroot_ok || die "the wasm32 sysroot was built but rustc cannot use it"
    log "wasm32 sysroot built with std, panic_abort (no libtest)"
  fi
}

ensure_deb_web_link() {
  command -v rustup >/dev/null || die "the Debian route needs rustup to register /usr as toolchain deb-web"
  if rustup toolchain list | grep -q '^deb-web'; then
    log "rustup toolchain deb-web linked"
  else
    log "rustup toolchain link deb-web /usr"
    rustup toolchain link deb-web /usr
  fi
  [ "$(rustc --print sysroot)" = /usr ] || die "RUSTUP_TOOLCHAIN=deb-web but rustc's sysroot is $(rustc --print sysroot)"
  command -v wasm-ld-22 >/dev/null || die "wasm-ld-22 not found (package lld-22)"
}

log "wasm32 route: $ENTROGRAD_WASM_ROUTE"
if [ "$ENTROGRAD_WASM_ROUTE" = debian ]; then
  ensure_deb_packages
  ensure_sysroot
  ensure_deb_web_link
fi
log "wasm32 compiler: $(rustc --version) (sysroot $(rustc --print sysroot))"

# --- 2. wasm-bindgen-cli (pinned to the crate's wasm-bindgen) and wasm-pack ----------------------
# The crate pins `wasm-bindgen = "=X.Y.Z"`; the CLI must be that exact version.
WBG_VERSION=$(grep -E '^[[:space:]]*wasm-bindgen[[:space:]]*=' crate/Cargo.toml |
  grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true)
[ -n "$WBG_VERSION" ] || die "cannot read the wasm-bindgen version from crate/Cargo.toml"
if [ -f Cargo.lock ]; then
  locked=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  [ -z "$locked" ] || [ "$locked" = "$WBG_VERSION" ] ||
    die "crate/Cargo.toml pins wasm-bindgen $WBG_VERSION but Cargo.lock has $locked"
fi

# Prints the installed version, or nothing. A probe of a missing tool must not end the script
# (under pipefail a missing wasm-bindgen made this pipeline exit 127, and set -e stopped there).
wbg_installed() {
  command -v wasm-bindgen >/dev/null 2>&1 || return 0
  wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true
}
wait_for_cargo_install wasm-bindgen-cli
have=$(wbg_installed)
if [ "$have" = "$WBG_VERSION" ]; then
  log "wasm-bindgen $have present"
else
  log "cargo install wasm-bindgen-cli =$WBG_VERSION (found: ${have:-none}; a few minutes)"
  # --locked first; this registry mirror lacked one locked dependency (webpki-roots 1.0.11) once,
  # so fall back to resolving afresh.
  if ! host_cargo install wasm-bindgen-cli --version "=$WBG_VERSION" --locked --force --quiet; then
    log "--locked install failed; retrying without --locked"
    host_cargo install wasm-bindgen-cli --version "=$WBG_VERSION" --force --quiet
  fi
  [ "$(wbg_installed)" = "$WBG_VERSION" ] || die "wasm-bindgen on PATH is $(wbg_installed), not $WBG_VERSION"
fi

wait_for_cargo_install wasm-pack
if command -v wasm-pack >/dev/null; then
  log "$(wasm-pack --version) present"
else
  # Built from source: the npm package wasm-pack downloads a binary, which cannot work here.
  log "cargo install wasm-pack --locked (a few minutes)"
  host_cargo install wasm-pack --locked --quiet
fi

# --- 3. node_modules -------------------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  log "node_modules up to date with package-lock.json"
fi
log "$(node_modules/.bin/wasm-opt --version) (npm binaryen)"

# --- 4. build --------------------------------------------------------------------------------------
bash scripts/build-wasm.sh

# The TypeScript build, when dist/ is older than anything it is made from.
dist_stale() {
  local f
  for f in dist/index.js dist/index.cjs dist/browser.js dist/workerd.js dist/edge-light.js dist/js.js dist/js.cjs dist/cli.js \
    dist/entrograd-simd.wasm dist/entrograd.wasm; do
    [ -f "$f" ] || return 0
  done
  local inputs=(ts pkg/simd pkg/scalar package.json package-lock.json tsup.config.ts tsconfig.json)
  [ -n "$(find "${inputs[@]}" -newer dist/index.js -print -quit 2>/dev/null)" ]
}
if dist_stale; then
  log "npm run build"
  npm run --silent build
else
  log "dist/ up to date"
fi

# --- 5. Python packages for the tests (issue 5: training and persistence) ------------------------
# test/python.test.ts round-trips safetensors files through Python's `safetensors` package (with
# numpy). Installed from PyPI with pip when missing; torch is NOT installed here (only the
# fixture generator test/fixtures/torch_reference.py needs it; the tests read its JSON).
ensure_python_test_packages() {
  command -v python3 >/dev/null || die "python3 not found: the tests read and write files with Python's safetensors"
  if python3 -c 'import safetensors, numpy' >/dev/null 2>&1; then
    log "python: safetensors and numpy present"
    return
  fi
  log "pip install safetensors numpy"
  python3 -m pip install --quiet --disable-pip-version-check safetensors numpy ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages safetensors numpy
  python3 -c 'import safetensors, numpy' >/dev/null 2>&1 || die "python3 cannot import safetensors and numpy after pip install"
}
ensure_python_test_packages

log "done ($ENTROGRAD_WASM_ROUTE route)"
