#!/usr/bin/env node
// Packaging tests: the published tarball in nine runtimes, as users get it.
//
//   npm run test:runtimes          (part of `npm test`; needs the built dist/: scripts/setup.sh)
//
// 1. Installs what it needs, each step only when missing: Debian's chromium (apt-get), and the
//    tools locked in test/runtimes/package-lock.json (Deno, Bun, wrangler + miniflare/workerd,
//    edge-runtime, Vite, webpack, esbuild, playwright-core, publint, attw) with `npm ci` into a
//    work folder outside the repository, so that nothing resolves from the repository's own
//    node_modules: $ENTROGRAD_RUNTIMES_DIR, else <tmpdir>/entrograd-runtimes-<hash of the repo path>.
// 2. `npm pack`s the package, checks the tarball with `publint --strict` and `attw`.
// 3. Copies each fixture (test/runtimes/fixtures/*) into the work folder afresh and installs the
//    tarball into it with `npm install <tarball>`, like a user. Each fixture trains 20 SGD
//    steps with seed 42 (the snippets of docs/runtimes.md) and prints "<backend> <entropy>".
// 4. Runs them: Node ESM, Node CJS (with require(esm) off), Deno, Bun, a Vite app (built, and
//    its dev server), a webpack app, an esbuild bundle (ESM and the default IIFE) in headless
//    Chromium, workerd (bundled by wrangler, run by miniflare) and Vercel's edge-runtime.
//    Every one must get "wasm-simd" (all nine engines have SIMD) and the entropy Node computes.
//    Node, Deno, Bun, Chromium (the esbuild app), workerd and the edge-runtime also run the views
//    check (views-check.mjs, issue 12): WebAssembly.Memory's grow(0) detaches views there, views
//    kept past dispose() are detached before their memory is reused, and garbage written through
//    them leaves a later model untouched. Next to it, the threads check (threads-check.mjs,
//    issue 15): init({ threads: 2 }) gives two threads in Node, Deno, Bun and a cross-origin-
//    isolated page in Chromium (a worker takes part, the parameters are the one-thread ones bit
//    for bit, views kept past dispose() of a threaded model reach nothing else), and one thread,
//    saying why, in a page that is not isolated, in workerd and in the edge-runtime.
// 5. Checks that docs/runtimes.md shows each fixture's snippet as it is.
// 6. Runs the `entrograd` command from the tarball installed into fixtures/cli, as users do:
//    `npx entrograd --help`, `info`, `demo --quick`, a tiny `train` (whose model the installed
//    package then loads), and `bench`, which an installed package does not offer (it exits 1
//    with a message that says why).
// Prints one line per runtime and a closing "packaging: N passed, N failed" (the nine runtimes,
// the two linters, the docs check and the CLI); exits 1 on a failure.
// `node test/runtimes/run.mjs deno bun` runs only those runtimes; `... cli` only the CLI.

import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const ROOT = resolve(HERE, "../..");
const WORK =
  process.env.ENTROGRAD_RUNTIMES_DIR ??
  join(tmpdir(), `entrograd-runtimes-${createHash("sha1").update(ROOT).digest("hex").slice(0, 8)}`);
const CHROMIUM = "/usr/bin/chromium";
const started = Date.now();

const log = (msg) => console.log(`[runtimes ${String(Math.round((Date.now() - started) / 1000)).padStart(4)}s] ${msg}`);
const seconds = (t0) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** Runs a command; resolves to its stdout; rejects with its output on failure or time-out. */
function run(cmd, args, { cwd = WORK, env = {}, timeout = 180_000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      err += `\n(killed after ${timeout / 1000} s)`;
    }, timeout);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(out);
      else
        reject(
          new Error(
            `${cmd} ${args.join(" ")} exited with ${code}\n${(out + err).trim().split("\n").slice(-25).join("\n")}`,
          ),
        );
    });
  });
}

const bin = (name) => join(WORK, "node_modules", ".bin", name);

// --- 1. what the tests need --------------------------------------------------------------------

/** A step that cannot go on: main() prints it as one line, `[runtimes] ERROR: <step>: <why>`. */
class StepError extends Error {
  constructor(step, why) {
    super(why);
    this.step = step;
  }
}

/** True when NAME is an executable file in a directory of PATH (a probe that never throws). */
function onPath(name) {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      accessSync(join(dir || ".", name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function ensureChromium() {
  if (existsSync(CHROMIUM)) return;
  const step = "chromium";
  if (!onPath("apt-get")) throw new StepError(step, `${CHROMIUM} missing and no apt-get to install it`);
  const root = process.getuid?.() === 0;
  if (!root && !onPath("sudo")) throw new StepError(step, `${CHROMIUM} missing; not root and no sudo to apt-get it`);
  const [cmd, ...pre] = root ? ["apt-get"] : ["sudo", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"];
  // Returns null on success, else the reason (exit status, or the spawn error); never throws.
  const apt = (...args) => {
    try {
      execFileSync(cmd, [...pre, ...args], {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
      return null;
    } catch (e) {
      return e.status != null ? `status ${e.status}` : String(e.code ?? e.message);
    }
  };
  const known = () => {
    try {
      return /Candidate: (?!\(none\))/.test(execFileSync("apt-cache", ["policy", "chromium"], { encoding: "utf8" }));
    } catch {
      return false;
    }
  };
  if (!known()) {
    log("apt-get update (the package lists do not know chromium)");
    const why = apt("update", "-qq");
    if (why) throw new StepError(step, `apt-get update failed (${why})`);
  }
  log("apt-get install chromium (a minute or two)");
  if (apt("install", "-y", "-qq", "chromium")) {
    log("apt-get install failed; apt-get update and once more");
    const whyUpdate = apt("update", "-qq");
    if (whyUpdate) throw new StepError(step, `apt-get update failed (${whyUpdate})`);
    const why = apt("install", "-y", "-qq", "chromium");
    if (why) throw new StepError(step, `apt-get install chromium failed twice (${why})`);
  }
  if (!existsSync(CHROMIUM)) throw new StepError(step, `apt-get installed chromium but ${CHROMIUM} is not there`);
}

async function ensureTools() {
  mkdirSync(WORK, { recursive: true });
  const lock = readFileSync(join(HERE, "package-lock.json"));
  const manifest = readFileSync(join(HERE, "package.json"));
  const stamp = createHash("sha1").update(manifest).update(lock).digest("hex");
  const stampFile = join(WORK, "node_modules", ".entrograd-tools");
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) return;
  writeFileSync(join(WORK, "package.json"), manifest);
  writeFileSync(join(WORK, "package-lock.json"), lock);
  log(`npm ci of the tools into ${WORK} (a minute)`);
  const ci = () => run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { timeout: 900_000 });
  await ci().catch((e) => {
    log(`npm ci failed; once more\n${e.message}`);
    return ci().catch((again) => {
      console.error(again.message);
      throw new StepError("tools", `npm ci into ${WORK} failed twice (its output above)`);
    });
  });
  writeFileSync(stampFile, stamp);
}

// --- 2. the tarball ----------------------------------------------------------------------------

async function pack() {
  for (const f of ["dist/index.js", "dist/index.cjs", "dist/browser.js", "dist/entrograd-simd.wasm"]) {
    if (!existsSync(join(ROOT, f))) throw new StepError("pack", `${f} is missing: build first (bash scripts/setup.sh)`);
  }
  const packs = join(WORK, "pack");
  rmSync(packs, { recursive: true, force: true });
  mkdirSync(packs);
  const [info] = JSON.parse(await run("npm", ["pack", "--json", "--pack-destination", packs], { cwd: ROOT }));
  return { tarball: join(packs, info.filename), files: info.files.length, size: info.size };
}

async function hygiene(tarball) {
  const results = [];
  try {
    await run(bin("publint"), ["run", tarball, "--strict"]);
    results.push({ name: "publint --strict", ok: true });
  } catch (e) {
    results.push({ name: "publint --strict", ok: false, detail: e.message });
  }
  // The .wasm subpaths are not JavaScript and carry no types on purpose: what an import of one
  // gives depends on the bundler (a WebAssembly.Module in workerd, a URL with Vite's ?url...),
  // so the user's environment declares it.
  try {
    await run(bin("attw"), [tarball, "--no-color", "--exclude-entrypoints", "./simd.wasm", "./entrograd.wasm"]);
    results.push({ name: "attw (node10, node16 CJS/ESM, bundler)", ok: true });
  } catch (e) {
    results.push({ name: "attw", ok: false, detail: e.message });
  }
  return results;
}

// docs/runtimes.md shows, per runtime, the exact files its fixture runs.
const SNIPPETS = [
  "node-esm/main.mjs",
  "node-cjs/main.cjs",
  "deno/main.js",
  "bun/main.js",
  "vite/src/main.js",
  "webpack/webpack.config.js",
  "webpack/src/index.js",
  "esbuild/src/main.js",
  "workerd/wrangler.toml",
  "workerd/src/worker.js",
  "edge-light/api/train.js",
  "edge-light/api/train-module.js",
];

function readmeSnippets() {
  const readme = readFileSync(join(ROOT, "docs", "runtimes.md"), "utf8");
  const missing = SNIPPETS.filter((f) => !readme.includes(readFileSync(join(HERE, "fixtures", f), "utf8").trimEnd()));
  const build = JSON.parse(readFileSync(join(HERE, "fixtures/esbuild/package.json"), "utf8")).scripts.build.split(
    " && ",
  )[0];
  if (!readme.includes(build)) missing.push("the esbuild command");
  return {
    name: "docs/runtimes.md snippets = fixtures",
    ok: missing.length === 0,
    detail: `not in docs/runtimes.md: ${missing.join(", ")}`,
  };
}

// --- 3. fixtures -------------------------------------------------------------------------------

async function install(name, tarball) {
  const dir = join(WORK, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(join(HERE, "fixtures", name), dir, { recursive: true });
  // The views and threads checks, next to the fixture's entry that imports them.
  const views = RUNTIMES.find((r) => r.name === name)?.views;
  if (views !== undefined)
    for (const check of ["views-check.mjs", "threads-check.mjs"]) cpSync(join(HERE, check), join(dir, views, check));
  await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error", tarball], { cwd: dir });
  return dir;
}

/** The value Node computes: the same 20 steps with the built package in this process. */
async function reference() {
  const { init, Model, SGD } = await import(pathToFileURL(join(ROOT, "dist/index.js")).href);
  const backend = await init();
  const model = new Model({ inputs: 8, outputs: 4, seed: 42 });
  const sgd = new SGD(model, { lr: 0.5 });
  const x = Float32Array.from({ length: 32 * 8 }, (_, i) => ((i * 37) % 17) / 8 - 1);
  const before = model.entropy(x);
  for (let step = 0; step < 20; step++) sgd.step(x);
  const entropy = model.entropy(x);
  model.dispose();
  return { backend, before, entropy };
}

/** The views check's lines (views-check.mjs) → what each says, and what is wrong with it. */
function parseViews(text) {
  const found = [];
  for (const line of text.split("\n")) {
    const m = /views (\S+) grow0=(\S+) kept=(\S+) others=(\S+)$/.exec(line.trim());
    if (m === null) continue;
    const [, backend, grow0, kept, others] = m;
    const problems = [];
    if (others !== "untouched") problems.push("garbage through views kept past dispose() changed a later model");
    if (grow0 === "detaches" && kept !== "detached") problems.push(`grow(0) detaches, but kept views were ${kept}`);
    if (backend !== "wasm-simd") problems.push(`views checked on ${backend}`);
    found.push({ grow0, kept, problems });
  }
  return found;
}

/**
 * The threads check's lines (threads-check.mjs) → what each says, and what is wrong with it.
 * `expected(label)`: the threads that runtime (or page) should have, and what threadInfo()
 * should say why when that is 1.
 */
function parseThreads(text, expected) {
  const found = [];
  for (const line of text.split("\n")) {
    const m = /^(?:(.+): )?threads (\d+) model=(\d+) same=(\S+) others=(\S+) helped=(\S+) why=(.*)$/.exec(line.trim());
    if (m === null) continue;
    const [, label, n, model, same, others, helped, why] = m;
    const want = expected(label);
    const where = label ? `${label}: ` : "";
    const problems = [];
    if (Number(n) !== want.threads) problems.push(`${where}threads ${n}, expected ${want.threads} (${why})`);
    if (Number(model) !== Number(n)) problems.push(`${where}a new model took ${model} threads of ${n}`);
    if (same !== "yes") problems.push(`${where}two threads did not give the one-thread parameters`);
    if (others !== "untouched") problems.push(`${where}garbage through views of a threaded model changed the next`);
    if (Number(n) > 1 && helped !== "yes") problems.push(`${where}no worker took part in a call`);
    if (want.why !== undefined && !want.why.test(why))
      problems.push(`${where}threadInfo().reason "${why}", expected ${want.why}`);
    found.push({ label, threads: Number(n), helped, problems });
  }
  return found;
}

/** "label: backend entropy" or "backend entropy" lines → results. */
function parse(text) {
  const found = [];
  for (const line of text.split("\n")) {
    const m = /^(?:(.+): )?(wasm-simd|wasm|js) (\S+)$/.exec(line.trim());
    if (m) found.push({ label: m[1], backend: m[2], entropy: Number(m[3]) });
  }
  if (found.length === 0) throw new Error(`no "<backend> <entropy>" line in:\n${text.trim()}`);
  return found;
}

// --- 6. the command line, installed -------------------------------------------------------------

/** Runs a command to its end, whatever its exit code: { code, stdout, stderr }. */
function outcome(cmd, args, { cwd, timeout = 120_000 }) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? signal, stdout, stderr });
    });
  });
}

async function cliInstalled(dir) {
  const t0 = Date.now();
  const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
  // --no: never install from the registry; the command must come from the installed tarball.
  // "--" keeps npx from taking the command's own options (--help) for its own.
  const npx = (...args) => outcome("npx", ["--no", "--", "entrograd", ...args], { cwd: dir });
  const problems = [];
  const expectRun = (what, r, checks) => {
    if (r.code !== 0) {
      problems.push(`${what}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split("\n").slice(-5).join(" / ")}`);
      return;
    }
    for (const [re, want = true] of checks)
      if (re.test(r.stdout) !== want) problems.push(`${what}: stdout ${want ? "lacks" : "has"} ${re}`);
  };
  const done = [];

  const help = await npx("--help");
  expectRun("--help", help, [[/^ {2}demo\b/m], [/^ {2}train\b/m], [/^ {2}info\b/m], [/^ {2}bench\b/m, false]]);
  done.push("--help");

  const info = await npx("info");
  expectRun("info", info, [
    [new RegExp(`^entrograd ${version.replace(/\./g, "\\.")}$`, "m")],
    [/SIMD128\s+yes/],
    [/default\s+wasm-simd/],
  ]);
  done.push("info");

  const t1 = Date.now();
  const demo = await npx("demo", "--quick", "--seeds", "1");
  const clean = /^\| no adaptation\s+\|\s+(\d+\.\d) ±/m.exec(demo.stdout);
  expectRun("demo --quick --seeds 1", demo, [[/^Accuracy \(%\) on the test split/m], [/^Mean entropy/m]]);
  if (demo.code === 0 && !(clean && Number(clean[1]) > 85))
    problems.push(`demo: clean accuracy without adaptation ${clean?.[1] ?? "missing"}, expected > 85`);
  done.push(`demo --quick (${seconds(t1)}, clean accuracy ${clean?.[1] ?? "?"} %)`);

  // Two features, a 0/1 target: whether their sum is positive.
  const rows = ["a,b,y"];
  for (let i = 0; i < 300; i++) {
    const a = Math.sin(i * 1.3) * 3;
    const b = Math.cos(i * 0.7) * 2;
    rows.push(`${a.toFixed(3)},${b.toFixed(3)},${a + b > 0 ? 1 : 0}`);
  }
  writeFileSync(join(dir, "tiny.csv"), `${rows.join("\n")}\n`);
  const train = await npx("train", "tiny.csv", "--epochs", "5", "-o", "tiny.safetensors");
  const test = /test (\d+\.\d)%/.exec(train.stdout);
  expectRun("train", train, [[/^trained 1 output on 2 features, 240 rows \(60 held out\)/m]]);
  if (train.code === 0 && !(test && Number(test[1]) > 80)) problems.push(`train: test accuracy ${test?.[1]}`);
  if (train.code === 0) {
    const load = await outcome(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        'import { readFileSync } from "node:fs"; import { init, Model } from "entrograd"; await init(); ' +
          'const m = Model.load(readFileSync("tiny.safetensors")); console.log(m.inputs, m.outputs);',
      ],
      { cwd: dir },
    );
    if (load.code !== 0 || load.stdout.trim() !== "2 1")
      problems.push(`the trained model does not load: ${(load.stdout + load.stderr).trim()}`);
  }
  done.push(`train (test accuracy ${test?.[1] ?? "?"} %, loads)`);

  const bench = await npx("bench");
  if (bench.code !== 1 || !/^entrograd: bench needs the repository/.test(bench.stderr))
    problems.push(`bench: expected exit 1 and "bench needs the repository", got ${bench.code}: ${bench.stderr.trim()}`);
  done.push("bench refused (exit 1, says why)");

  return {
    name: "entrograd CLI from the installed tarball",
    ok: problems.length === 0,
    detail: problems.length === 0 ? `${done.join("; ")} (${seconds(t0)})` : problems.join("\n"),
  };
}

// --- browsers ----------------------------------------------------------------------------------

const TYPES = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
};

/** A static file server on 127.0.0.1 for one folder (a static host, as users deploy); with
 *  `isolated`, its pages are cross-origin isolated (COOP and COEP headers: SharedArrayBuffer). */
async function serve(root, isolated = false) {
  const headers = isolated
    ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" }
    : {};
  const server = createServer((req, res) => {
    let path = normalize(decodeURIComponent(new URL(req.url, "http://localhost").pathname));
    if (path.endsWith("/")) path += "index.html";
    let body;
    try {
      body = readFileSync(join(root, path));
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { ...headers, "content-type": TYPES[extname(path)] ?? "application/octet-stream" }).end(body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

async function freePort() {
  const server = createNetServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Vite's dev server on a free port; resolves once it answers. */
async function viteDev(dir) {
  const port = await freePort();
  const child = spawn(bin("vite"), ["--host", "127.0.0.1", "--port", String(port), "--strictPort"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(url)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`vite dev server did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, close: () => child.kill("SIGTERM") };
}

let browser = null;
async function chromium() {
  if (browser === null) {
    const { chromium: launcher } = await import(
      pathToFileURL(join(WORK, "node_modules/playwright-core/index.mjs")).href
    );
    // playwright-core starts Chromium with a fresh, empty profile of its own.
    browser = await launcher.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }
  return browser;
}

/** Opens a page; resolves to the text of #out once the app wrote it, and where the wasm came from. */
async function page(url) {
  const context = await (await chromium()).newContext();
  const tab = await context.newPage();
  const errors = [];
  const wasm = [];
  tab.on("pageerror", (e) => errors.push(e.message));
  tab.on("response", (r) => {
    const name = r.url().split("/").pop().split("?")[0];
    if (r.ok() && /\.wasm$/.test(name) && /wasm/.test(r.headers()["content-type"] ?? "")) wasm.push(`fetched ${name}`);
    if (r.ok() && /^wasm-(simd|scalar|threads)-base64/.test(name)) wasm.push(`inlined copy, ${name}`);
  });
  try {
    await tab.goto(url);
    await tab
      .waitForFunction(() => document.querySelector("#out")?.textContent !== "running", null, { timeout: 30_000 })
      .catch((e) => {
        throw new Error(errors.length ? errors.join("\n") : e.message);
      });
    const text = await tab.textContent("#out");
    if (errors.length) throw new Error(errors.join("\n"));
    // An inlined copy in a bundle that does not split code (IIFE) loads with the bundle.
    return { text, source: wasm.join(", ") || "inlined copy, in the bundle" };
  } finally {
    await context.close();
  }
}

async function inBrowser(dir, pages) {
  const lines = [];
  const sources = {};
  for (const { label, root, path = "", dev = false, isolated = false } of pages) {
    const server = dev ? await viteDev(dir) : await serve(join(dir, root), isolated);
    try {
      const { text, source } = await page(server.url + path);
      lines.push(...text.split("\n").map((line) => `${label}: ${line}`));
      sources[label] = source;
    } finally {
      await server.close();
    }
  }
  return { text: lines.join("\n"), sources };
}

// --- 4. the runtimes ---------------------------------------------------------------------------

const requireEsmOff = process.allowedNodeEnvironmentFlags.has("--no-experimental-require-module")
  ? ["--no-experimental-require-module"]
  : [];
const quiet = { DENO_NO_UPDATE_CHECK: "1", DO_NOT_TRACK: "1", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" };

const RUNTIMES = [
  {
    name: "node-esm",
    label: "Node ESM",
    // Also bundled by esbuild (a server bundle: the .wasm files stay behind, the inlined copies
    // are used) and without WebAssembly at all (--jitless: init() resolves to "js").
    go: async (dir) => {
      await run("npm", ["run", "bundle", "--silent"], { cwd: dir });
      return {
        text:
          `node: ${await run(process.execPath, ["main.mjs"], { cwd: dir })}\n` +
          `esbuild bundle: ${await run(process.execPath, ["bundle/main.mjs"], { cwd: dir })}\n` +
          `--jitless: ${await run(process.execPath, ["--jitless", "main.mjs"], { cwd: dir })}\n` +
          `views: ${await run(process.execPath, ["views.mjs"], { cwd: dir })}`,
        note: `node ${process.version}`,
      };
    },
    expect: (label) => (label === "--jitless" ? "js" : "wasm-simd"),
    views: ".",
  },
  {
    name: "node-cjs",
    label: "Node CJS",
    // require(esm) off: an ES module posing as the CommonJS entry cannot pass. Also bundled
    // by esbuild into one CommonJS file, as serverless functions are.
    go: async (dir) => {
      await run("npm", ["run", "bundle", "--silent"], { cwd: dir });
      return {
        text:
          `node: ${await run(process.execPath, [...requireEsmOff, "main.cjs"], { cwd: dir })}\n` +
          `esbuild bundle: ${await run(process.execPath, [...requireEsmOff, "bundle/main.cjs"], { cwd: dir })}`,
        note: `node ${process.version} ${requireEsmOff.join(" ")}`.trim(),
      };
    },
  },
  {
    name: "deno",
    label: "Deno",
    go: async (dir) => {
      const version = (await run(bin("deno"), ["--version"], { env: quiet })).split(" (")[0];
      const entry = await run(bin("deno"), ["eval", 'console.log(import.meta.resolve("entrograd"))'], {
        cwd: dir,
        env: quiet,
      });
      return {
        text:
          (await run(bin("deno"), ["run", "--allow-read", "main.js"], { cwd: dir, env: quiet })) +
          (await run(bin("deno"), ["run", "--allow-read", "views.js"], { cwd: dir, env: quiet })),
        note: `${version}, entry ${entry.trim().split("/entrograd/").pop()}`,
      };
    },
    views: ".",
  },
  {
    name: "bun",
    label: "Bun",
    go: async (dir) => {
      const version = `bun ${(await run(bin("bun"), ["--version"], { env: quiet })).trim()}`;
      const entry = await run(bin("bun"), ["--print", 'Bun.resolveSync("entrograd", process.cwd())'], {
        cwd: dir,
        env: quiet,
      });
      return {
        text:
          (await run(bin("bun"), ["main.js"], { cwd: dir, env: quiet })) +
          (await run(bin("bun"), ["views.js"], { cwd: dir, env: quiet })),
        note: `${version}, entry ${entry.trim().split("/entrograd/").pop()}`,
      };
    },
    views: ".",
  },
  {
    name: "vite",
    label: "Vite + Chromium",
    go: async (dir) => {
      await run("npm", ["run", "build", "--silent"], { cwd: dir });
      return inBrowser(dir, [
        { label: "vite build", root: "dist" },
        { label: "vite dev", dev: true },
      ]);
    },
  },
  {
    name: "webpack",
    label: "webpack + Chromium",
    go: async (dir) => {
      await run("npm", ["run", "build", "--silent"], { cwd: dir });
      return inBrowser(dir, [{ label: "webpack", root: "public" }]);
    },
  },
  {
    name: "esbuild",
    label: "esbuild + Chromium",
    go: async (dir) => {
      await run("npm", ["run", "build", "--silent"], { cwd: dir });
      return inBrowser(dir, [
        { label: "esbuild --format=esm", root: "public" },
        { label: "esbuild (iife)", root: "public", path: "classic.html" },
        { label: "views", root: "public", path: "views.html" },
        { label: "views, cross-origin isolated", root: "public", path: "views.html", isolated: true },
      ]);
    },
    views: "src",
    // A page that is not cross-origin isolated has no SharedArrayBuffer: one thread.
    threads: (label) =>
      label === "views, cross-origin isolated" ? { threads: 2 } : { threads: 1, why: /cross-origin isolated/ },
  },
  {
    name: "workerd",
    label: "workerd (wrangler, miniflare)",
    go: async (dir) => {
      await run("npm", ["run", "build", "--silent"], { cwd: dir, env: quiet });
      const modules = readdirSync(join(dir, "dist")).filter((f) => f.endsWith(".wasm"));
      return {
        text: await run(process.execPath, ["test.mjs"], { cwd: dir, env: quiet }),
        note: `wrangler bundled ${modules.map((f) => f.replace(/^[0-9a-f]+-/, "")).join(", ") || "no .wasm module"} as a module`,
      };
    },
    views: "src",
    threads: () => ({ threads: 1, why: /has no threads/ }),
  },
  {
    name: "edge-light",
    label: "Vercel edge-runtime",
    go: async (dir) => ({
      text: await run(process.execPath, ["test.mjs"], { cwd: dir }),
      note: "wasm code generation off, no FinalizationRegistry",
    }),
    views: "checks",
    threads: () => ({ threads: 1, why: /has no threads/ }),
  },
];

async function main() {
  const only = process.argv.slice(2);
  const runtimes = only.length ? RUNTIMES.filter((r) => only.includes(r.name)) : RUNTIMES;
  const withCli = only.length === 0 || only.includes("cli");
  if (runtimes.length === 0 && !withCli)
    throw new Error(`no runtime named ${only.join(", ")} (${RUNTIMES.map((r) => r.name).join(", ")})`);

  let t0 = Date.now();
  ensureChromium();
  await ensureTools();
  log(`tools ready (${seconds(t0)}); work folder ${WORK}`);

  t0 = Date.now();
  const { tarball, files, size } = await pack();
  log(`npm pack: ${tarball.split("/").pop()}, ${files} files, ${(size / 1024).toFixed(1)} KiB (${seconds(t0)})`);
  const checks = [...(await hygiene(tarball)), readmeSnippets()];
  for (const c of checks) log(`${c.name}: ${c.ok ? "ok" : `FAILED\n${c.detail}`}`);

  const ref = await reference();
  log(`Node reference: ${ref.backend}, entropy ${ref.before} → ${ref.entropy} bits after 20 steps (seed 42)`);

  t0 = Date.now();
  const dirs = new Map();
  const queue = [...runtimes, ...(withCli ? [{ name: "cli" }] : [])];
  await Promise.all(
    [0, 1, 2].map(async () => {
      for (let r = queue.shift(); r !== undefined; r = queue.shift()) dirs.set(r.name, await install(r.name, tarball));
    }),
  );
  log(`tarball installed into ${dirs.size} fixtures (${seconds(t0)})`);

  const rows = [];
  for (const r of runtimes) {
    const t = Date.now();
    const row = { label: r.label, ok: false, backend: "-", detail: "" };
    try {
      const out = await r.go(dirs.get(r.name));
      const { text, note = "", sources = {} } = typeof out === "string" ? { text: out } : out;
      const results = parse(text);
      const problems = [];
      for (const res of results) {
        const where = res.label ? `${res.label}: ` : "";
        const expected = (r.expect ?? (() => "wasm-simd"))(res.label);
        if (res.backend !== expected) problems.push(`${where}backend ${res.backend}, expected ${expected}`);
        const diff = Math.abs(res.entropy - ref.entropy);
        if (!(diff <= 1e-6 * Math.max(1, Math.abs(ref.entropy))))
          problems.push(`${where}entropy ${res.entropy}, Node: ${ref.entropy}`);
      }
      const views = parseViews(text);
      if (r.views !== undefined && views.length === 0) problems.push("no views line from the views check");
      for (const v of views) problems.push(...v.problems);
      // Where the views check runs, the threads check runs next to it: two threads unless said.
      const threads = parseThreads(text, r.threads ?? (() => ({ threads: 2 })));
      if (r.views !== undefined && threads.length === 0) problems.push("no threads line from the threads check");
      for (const t of threads) problems.push(...t.problems);
      const same = (res) => (res.entropy === ref.entropy ? "= Node" : "≈ Node");
      // The first result is the runtime's own; variants (bundles, dev servers) follow it.
      row.backend = results[0].backend;
      row.ok = problems.length === 0;
      const each = results.map(
        (res) =>
          `${res.label ? `${res.label}: ` : ""}${res.backend} ${same(res)}${sources[res.label] ? ` (${sources[res.label]})` : ""}`,
      );
      const viewsNote = views.map((v) => `views: grow(0) ${v.grow0}, kept past dispose() ${v.kept}`);
      viewsNote.push(
        ...threads.map((t) => `${t.label ? `${t.label}: ` : ""}${t.threads} thread${t.threads > 1 ? "s" : ""}`),
      );
      row.detail = row.ok
        ? [`entropy ${results[0].entropy}`, ...each, ...viewsNote, ...(note ? [note] : [])].join("; ")
        : problems.join("; ");
    } catch (e) {
      row.detail = String(e?.message ?? e);
    }
    row.time = seconds(t);
    rows.push(row);
    console.log(
      `${row.ok ? "  ok  " : "  FAIL"} ${row.label.padEnd(30)} ${row.backend.padEnd(10)} ${row.time.padStart(7)}  ${row.detail}`,
    );
  }
  if (browser !== null) await browser.close();

  if (withCli) {
    let c;
    try {
      c = await cliInstalled(dirs.get("cli"));
    } catch (e) {
      c = { name: "entrograd CLI from the installed tarball", ok: false, detail: String(e?.stack ?? e) };
    }
    checks.push(c);
    log(`${c.name}: ${c.ok ? `ok: ${c.detail}` : `FAILED\n${c.detail}`}`);
  }

  const passed = rows.filter((r) => r.ok).length + checks.filter((c) => c.ok).length;
  const failed = rows.length + checks.length - passed;
  log(`done in ${seconds(started)}`);
  console.log(`packaging: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch(async (e) => {
  console.error(
    e instanceof StepError ? `[runtimes] ERROR: ${e.step}: ${e.message}` : `[runtimes] ERROR: ${e?.stack ?? e}`,
  );
  if (browser !== null) await browser.close().catch(() => undefined);
  console.log("packaging: 0 passed, 1 failed");
  process.exitCode = 1;
});
