# shellcheck shell=bash
# scripts/env.sh: the one place that says which Rust toolchain builds the wasm and which PATH the
# builds need. Sourced by scripts/setup.sh, scripts/build-wasm.sh and scripts/test-rust.sh
# (`source "$(dirname "${BASH_SOURCE[0]}")/env.sh"`). Prints nothing; safe to source twice.
#
# Two routes to the wasm32-unknown-unknown target:
#   rustup  the active rustup toolchain has the target (`rustup target add wasm32-unknown-unknown`
#           worked on this machine): use it as it is, set nothing.
#   debian  it does not (rustup here cannot download targets): Debian's rustc-web 1.96, a wasm32
#           sysroot built once by scripts/setup.sh, registered with rustup as `deb-web`, and
#           LLVM 22's wasm-ld. See CONTRIBUTING.md, "What set-up does".
# ENTROGRAD_WASM_ROUTE=rustup|debian forces a route.

ENTROGRAD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ENTROGRAD_ROOT

# Where `cargo install` puts wasm-bindgen and wasm-pack ($CARGO_HOME/bin, by default ~/.cargo/bin).
for _entrograd_dir in "${CARGO_HOME:-$HOME/.cargo}/bin" "$ENTROGRAD_ROOT/node_modules/.bin"; do
  case ":$PATH:" in
    *":$_entrograd_dir:"*) ;;
    *) PATH="$_entrograd_dir:$PATH" ;;
  esac
done
unset _entrograd_dir
export PATH

# Sourcing twice must decide the same way: forget our own toolchain choice before probing.
if [ "${RUSTUP_TOOLCHAIN:-}" = deb-web ]; then unset RUSTUP_TOOLCHAIN; fi

if [ -z "${ENTROGRAD_WASM_ROUTE:-}" ]; then
  ENTROGRAD_WASM_ROUTE=debian
  if command -v rustup >/dev/null 2>&1; then
    # The list is read whole, not piped into `grep -q`: grep may exit at the first match before
    # rustup has written the rest (wasm32 sorts before x86_64), rustup then fails on the closed
    # pipe, and under the callers' pipefail the debian route would be chosen wrongly.
    _entrograd_targets=$(cd "$ENTROGRAD_ROOT" && rustup target list --installed 2>/dev/null) || _entrograd_targets=
    case $'\n'"$_entrograd_targets"$'\n' in
      *$'\n'wasm32-unknown-unknown$'\n'*) ENTROGRAD_WASM_ROUTE=rustup ;;
    esac
    unset _entrograd_targets
  fi
fi
export ENTROGRAD_WASM_ROUTE

if [ "$ENTROGRAD_WASM_ROUTE" = debian ]; then
  # The wasm32 sysroot lives under /usr/lib/rustlib, so rustc from /usr must drive every build.
  export RUSTUP_TOOLCHAIN=deb-web
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22
fi
