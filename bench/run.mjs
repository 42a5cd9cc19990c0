// entrograd's bench: `npm run bench` (or `npm run bench -- --quick`, `-- --help`).
//
// Times one training step, forward, entropy and gradients at sizes A–E on every backend, the
// naive JS loop and TensorFlow.js 4.22 (wasm backend, two ways) as peers, and a register-resident
// f32x4 peak, all interleaved in one process: every round runs every contender once, in rotated
// order, and the table reports the median over rounds. Also: init() from cold in a fresh process,
// JS heap and WebAssembly memory over 10^5 steps, the .wasm sizes. Writes JSON and Markdown to
// bench/results/ and prints the Markdown.

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { Bench } from "tinybench";
import { naiveLayer, naiveStep } from "./naive.mjs";
import { peakKernels } from "./peak.mjs";

const HELP = `npm run bench [-- options]
  --quick            2 rounds of short samples, slow contenders timed once per round (under a
                     minute on a 2-core machine)
  --rounds N         rounds (default 7; --quick 2)
  --time MS          sampling time per contender per round (default 150; --quick 25)
  --sizes A,B,...    sizes to run (default A,B,C,D,E)
  --ops step,...     step, forward, entropy, gradients (default all)
  --no-peers         skip the naive loop and TensorFlow.js
  --clock cpu|wall   cpu (default): this process's CPU time, which other load on the machine
                     does not inflate; wall: elapsed time
  --out DIR          where to write results (default bench/results)
  --help`;

const { values: opt } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    time: { type: "string" },
    sizes: { type: "string", default: "A,B,C,D,E" },
    ops: { type: "string", default: "step,forward,entropy,gradients" },
    "no-peers": { type: "boolean", default: false },
    clock: { type: "string", default: "cpu" },
    out: { type: "string", default: new URL("./results/", import.meta.url).pathname },
    help: { type: "boolean", default: false },
  },
});
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}

// The heap check needs gc(): re-run this file under --expose-gc when started without it.
if (typeof globalThis.gc !== "function") {
  const r = spawnSync(process.execPath, ["--expose-gc", ...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
  });
  process.exit(r.status ?? 1);
}

const root = new URL("../", import.meta.url);
const dist = new URL("dist/", root);
const { init, Model, SGD, backend, memoryBytes } = await import(new URL("index.js", dist).href);

/** @typedef {{ inputs: number; outputs: number; batch: number }} Shape */
/**
 * Something the rounds time: `fn` runs `inner` times per timed call; per-op times land in perRound.
 * @typedef {{ key: string; fn: () => unknown; inner: number; perRound: number[] }} Timed
 */
/** @typedef {Timed & { size: string; op: string; name: string; kind: string }} Task */
/** @typedef {Timed & { k: number; iterations: number; peak: import("./peak.mjs").PeakFn; flops: number }} PeakTask */
/** @typedef {{ name: string; kind: string; ops: Partial<Record<string, () => unknown>> }} Contender */
/** @typedef {{ w: Float32Array; g: Float32Array; b: Float32Array }} Params */
/**
 * @typedef {{ size: string; op: string; contender: string; ms: number; gflops: number; rounds: number[];
 *   vsSimd: number | null; ofPeak: number }} Row
 */

/** @type {Record<string, Shape>} */
const SIZES = {
  A: { inputs: 64, outputs: 16, batch: 32 },
  B: { inputs: 256, outputs: 64, batch: 128 },
  C: { inputs: 784, outputs: 10, batch: 256 },
  D: { inputs: 1024, outputs: 256, batch: 256 },
  E: { inputs: 4096, outputs: 512, batch: 64 },
};
const OPS = ["step", "forward", "entropy", "gradients"];
const BACKENDS = ["wasm-simd", "wasm", "js"];
const LR = 1e-3;

const quick = opt.quick;
const rounds = Number(opt.rounds ?? (quick ? 2 : 7));
const sampleMs = Number(opt.time ?? (quick ? 25 : 150));
const sizes = opt.sizes.split(",").map((s) => s.trim().toUpperCase());
const ops = opt.ops.split(",").map((s) => s.trim());
for (const s of sizes) if (!(s in SIZES)) throw new Error(`unknown size ${s} (A–E)`);
for (const o of ops) if (!OPS.includes(o)) throw new Error(`unknown op ${o} (${OPS.join(", ")})`);
if (!["cpu", "wall"].includes(opt.clock)) throw new Error("--clock is cpu or wall");
const peers = !opt["no-peers"];

const log = (/** @type {unknown[]} */ ...a) => console.error("[bench]", ...a);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const now = opt.clock === "cpu" ? cpuMs : () => performance.now();
const median = (/** @type {number[]} */ a) => {
  const s = [...a].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const flopsOf = (/** @type {string} */ op, /** @type {Shape} */ { inputs, outputs, batch }) =>
  (op === "step" || op === "gradients" ? 4 : 2) * batch * inputs * outputs;

/**
 * mulberry32: the bench's data, the same on every run.
 * @param {number} n
 * @param {number} seed
 */
function floats(n, seed, lo = -1, hi = 1) {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

// ------------------------------------------------------------------ set-up

const t0 = performance.now();
const startLoad = loadavg();
await init();
log(
  `entrograd ${backend()} loaded; rounds ${rounds}, ${sampleMs} ms per sample, clock ${opt.clock}, load average ${startLoad.map((v) => v.toFixed(2)).join(" ")}`,
);

/** @type {(Awaited<ReturnType<typeof import("./tfjs.mjs").loadTfjs>> & { mod: typeof import("./tfjs.mjs") }) | null} */
let tfjs = null;
if (peers) {
  try {
    const { loadTfjs } = await import("./tfjs.mjs");
    tfjs = { ...(await loadTfjs()), mod: await import("./tfjs.mjs") };
    log(`TensorFlow.js ${tfjs.version}, wasm backend, binary ${tfjs.binary.file.split("/").pop()}`);
  } catch (e) {
    log(`TensorFlow.js not available (${e instanceof Error ? e.message : e}): its rows are left out`);
  }
}

/** A contender: a name and, per op, a function running that op once. */
/** @type {Record<string, Contender[]>} */
const contenders = {};
/** @type {Record<string, { entropies: Record<string, number>; maxRelativeDifference: number; ok: boolean }>} */
const checks = {}; // entropy agreement
for (const size of sizes) {
  const shape = SIZES[size];
  const { inputs, outputs, batch } = shape;
  const x = floats(batch * inputs, 1000 + size.charCodeAt(0));
  /** @type {Contender[]} */
  const list = [];
  /** @type {Record<string, number>} */
  const entropies = {};
  /** @type {Params | null} */
  let params = null;
  for (const b of BACKENDS) {
    const m = new Model({ inputs, outputs, seed: 1, backend: b });
    if (params === null)
      params = { w: m.w.slice(), g: floats(inputs * outputs, 7, -0.01, 0.01), b: floats(outputs, 8, -0.1, 0.1) };
    m.g.set(params.g);
    m.b.set(params.b);
    entropies[b] = m.entropy(x);
    const o = new SGD(m, { lr: LR });
    list.push({
      name: b,
      kind: "entrograd",
      ops: {
        step: () => o.step(x),
        forward: () => m.forward(x),
        entropy: () => m.entropy(x),
        gradients: () => m.gradients(x),
      },
    });
  }
  if (params === null) throw new Error("no backend made the parameters");
  if (peers) {
    const nv = naiveLayer(inputs, outputs, batch, params.w, params.g, params.b);
    entropies.naive = naiveStep(naiveLayer(inputs, outputs, batch, params.w, params.g, params.b), x, 0);
    list.push({ name: "naive JS loop", kind: "peer", ops: { step: () => naiveStep(nv, x, LR) } });
    if (tfjs !== null) {
      const p = { inputs, outputs, batch, w: params.w, g: params.g, b: params.b };
      for (const [name, make] of /** @type {const} */ ([
        ["tfjs minimize", tfjs.mod.minimizeStep],
        ["tfjs tuned", tfjs.mod.tunedStep],
      ])) {
        const probe = make(tfjs.tf, { ...p, lr: 0 });
        entropies[name] = probe.step(x);
        probe.dispose();
      }
      const mini = tfjs.mod.minimizeStep(tfjs.tf, { ...p, lr: LR });
      const tuned = tfjs.mod.tunedStep(tfjs.tf, { ...p, lr: LR });
      list.push({ name: "tfjs-wasm minimize", kind: "peer", ops: { step: () => mini.step(x) } });
      list.push({ name: "tfjs-wasm tuned", kind: "peer", ops: { step: () => tuned.step(x) } });
    }
  }
  const ref = entropies["wasm-simd"];
  const worst = Math.max(...Object.values(entropies).map((h) => Math.abs(h - ref) / Math.abs(ref)));
  checks[size] = { entropies, maxRelativeDifference: worst, ok: worst <= 1e-4 };
  if (!checks[size].ok) log(`WARNING: size ${size}: the contenders' entropies differ (${JSON.stringify(entropies)})`);
  contenders[size] = list;
}

// ------------------------------------------------------------------ timing

/** @type {Task[]} */
const tasks = [];
for (const size of sizes) {
  for (const op of ops) {
    for (const c of contenders[size]) {
      const fn = c.ops[op];
      if (fn === undefined) continue;
      tasks.push({ key: `${size} ${op} ${c.name}`, size, op, name: c.name, kind: c.kind, fn, inner: 1, perRound: [] });
    }
  }
}
const peaks = peakKernels();
/** @type {PeakTask[]} */
const peakTasks = peaks.map((k) => ({
  key: `peak ${k.k}`,
  k: k.k,
  iterations: 1,
  inner: 1,
  perRound: [],
  peak: k.peak,
  fn: () => {}, // set once iterations are known
  flops: k.flopsPerIteration,
}));

// Warm-up: every function reaches V8's optimising tier before the first round.
log(`warming up ${tasks.length} contenders`);
for (const t of tasks) {
  const s = performance.now();
  let n = 0;
  while (n < (quick ? 1 : 3) || (performance.now() - s < (quick ? 40 : 200) && n < 2000)) {
    t.fn();
    n++;
  }
  // Ops per timed call: about 1.5 ms of work, so the clock's resolution and the harness's own
  // cost per call do not show.
  const one = Math.max((performance.now() - s) / n, 1e-4);
  t.inner = Math.max(1, Math.min(1e5, Math.round(1.5 / one)));
}
for (const p of peakTasks) {
  p.peak(1e6, 0.5, 0.5);
  const s = performance.now();
  p.peak(1e6, 0.5, 0.5);
  p.iterations = Math.max(1e5, Math.round((1e6 * 2) / Math.max(performance.now() - s, 1e-3)));
}

/**
 * One round of samples of every task in the list, in rotated order.
 * @param {Timed[]} list
 * @param {number} round
 */
async function sample(list, round) {
  const bench = new Bench({
    time: sampleMs,
    iterations: quick ? 1 : 2,
    warmupTime: 0,
    warmupIterations: 0,
    now,
    throws: true,
  });
  const order = list.map((_, i) => list[(i + round) % list.length]);
  for (const t of order) {
    const inner = t.inner;
    bench.add(t.key, () => {
      for (let i = 0; i < inner; i++) t.fn();
    });
  }
  await bench.run();
  for (const t of order) {
    const r = bench.getTask(t.key)?.result;
    if (r === undefined) throw new Error(`${t.key}: tinybench has no result`);
    t.perRound.push(median(r.samples) / t.inner);
  }
}

for (const p of peakTasks) {
  const it = p.iterations;
  const fn = p.peak;
  p.fn = () => fn(it, 0.5, 0.5);
}

for (let r = 0; r < rounds; r++) {
  const rs = performance.now();
  await sample(peakTasks, r);
  for (const size of sizes) {
    for (const op of ops)
      await sample(
        tasks.filter((t) => t.size === size && t.op === op),
        r,
      );
  }
  await sample(peakTasks, r + 1);
  log(`round ${r + 1}/${rounds} in ${((performance.now() - rs) / 1000).toFixed(1)} s`);
}

// ------------------------------------------------------------------ peak, init, memory, sizes

const peakRows = peakTasks.map((p) => ({
  accumulators: p.k,
  gflops: (p.flops * p.iterations) / median(p.perRound) / 1e6,
}));
const peak = peakRows.reduce((a, b) => (b.gflops > a.gflops ? b : a));

function coldInit() {
  const script = `
    const t0 = performance.now();
    const { init } = await import(${JSON.stringify(new URL("index.js", dist).href)});
    const t1 = performance.now();
    const b = await init();
    const t2 = performance.now();
    console.log(JSON.stringify({ importMs: t1 - t0, initMs: t2 - t1, backend: b }));`;
  /** @type {{ importMs: number; initMs: number; backend: string }[]} */
  const runs = [];
  for (let i = 0; i < (quick ? 3 : 7); i++) {
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`cold init failed: ${r.stderr}`);
    const lines = r.stdout.trim().split("\n");
    runs.push(JSON.parse(lines[lines.length - 1]));
  }
  return {
    runs,
    initMs: median(runs.map((r) => r.initMs)),
    importMs: median(runs.map((r) => r.importMs)),
    backend: runs[0].backend,
  };
}
log("init() from cold in fresh processes");
const cold = coldInit();

/** gc(): the re-run under --expose-gc above makes it exist. */
function collect() {
  if (typeof globalThis.gc !== "function") throw new Error("gc() is missing: run under node --expose-gc");
  globalThis.gc();
}

/**
 * JS heap (after gc) and WebAssembly memory before and after `steps` steps at size A.
 * @param {string} b
 * @param {number} steps
 */
async function steadyState(b, steps) {
  const { inputs, outputs, batch } = SIZES.A;
  const x = floats(batch * inputs, 4242);
  const m = new Model({ inputs, outputs, seed: 2, backend: b });
  const o = new SGD(m, { lr: LR });
  for (let i = 0; i < 1000; i++) o.step(x);
  // Bytes allocated per step: growth of V8's young generation over a few steps (too few for a
  // scavenge to empty it in between).
  const young = () => getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_used_size ?? NaN;
  collect();
  const y0 = young();
  for (let i = 0; i < 500; i++) o.step(x);
  const perStep = (young() - y0) / 500;
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  collect();
  collect();
  const heap0 = process.memoryUsage().heapUsed;
  const wasm0 = memoryBytes(b);
  obs.observe({ entryTypes: ["gc"] });
  let loss = 0;
  for (let i = 0; i < steps; i++) loss += o.step(x).loss;
  const wasm1 = memoryBytes(b);
  collect();
  collect();
  const heap1 = process.memoryUsage().heapUsed;
  // The observer reports asynchronously: give it a turn of the event loop (the two gc() calls
  // above are counted too, and taken off).
  await new Promise((r) => setTimeout(r, 20));
  obs.disconnect();
  m.dispose();
  return {
    backend: b,
    steps,
    heapBefore: heap0,
    heapAfter: heap1,
    wasmBefore: wasm0,
    wasmAfter: wasm1,
    gcsDuring: Math.max(0, gcs - 2),
    bytesPerStep: perStep >= 0 ? perStep : null,
    finite: Number.isFinite(loss),
  };
}
log("heap and memory over 10^5 steps at size A");
const steady = [];
// 10^5 steps on wasm-simd (the issue's test); 10^4 on the slower backends keeps the bench short.
for (const b of BACKENDS) steady.push(await steadyState(b, b === "wasm-simd" ? 1e5 : 1e4));

const wasmFiles = ["entrograd-simd.wasm", "entrograd.wasm"].map((f) => {
  const bytes = readFileSync(new URL(f, dist));
  return { file: `dist/${f}`, bytes: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
});

// ------------------------------------------------------------------ results

/** @type {Row[]} */
const rows = tasks.map((t) => {
  const ms = median(t.perRound);
  const shape = SIZES[t.size];
  const gflops = flopsOf(t.op, shape) / ms / 1e6;
  return { size: t.size, op: t.op, contender: t.name, ms, gflops, rounds: t.perRound, vsSimd: null, ofPeak: 0 };
});
for (const r of rows) {
  const simd = rows.find((q) => q.size === r.size && q.op === r.op && q.contender === "wasm-simd");
  r.vsSimd = simd ? r.ms / simd.ms : null; // how many times longer than wasm-simd
  r.ofPeak = r.gflops / peak.gflops;
}
const endLoad = loadavg();

const find = (/** @type {string} */ size, /** @type {string} */ op, /** @type {string} */ name) =>
  rows.find((r) => r.size === size && r.op === op && r.contender === name);
/** @type {{ what: string; value: string; goal: string; met: boolean }[]} */
const targets = [];
/** @type {(what: string, value: string, goal: string, met: boolean) => void} */
const target = (what, value, goal, met) => {
  targets.push({ what, value, goal, met });
};
for (const size of sizes) {
  if (!ops.includes("step")) break;
  const simd = find(size, "step", "wasm-simd");
  if (simd === undefined) throw new Error(`no wasm-simd step at ${size}`);
  const pct = 100 * simd.ofPeak;
  target(
    `wasm-simd step at ${size}: % of peak`,
    `${pct.toFixed(0)}%`,
    size === "A" ? "≥ 50%" : "≥ 75%",
    pct >= (size === "A" ? 50 : 75),
  );
  const tuned = find(size, "step", "tfjs-wasm tuned");
  if (tuned)
    target(
      `step at ${size}: faster than tfjs-wasm tuned`,
      `${(tuned.ms / simd.ms).toFixed(1)}×`,
      size === "A" ? "≥ 20×" : "≥ 1.7×",
      tuned.ms / simd.ms >= (size === "A" ? 20 : 1.7),
    );
  const mini = find(size, "step", "tfjs-wasm minimize");
  if (mini)
    target(
      `step at ${size}: faster than tfjs-wasm minimize`,
      `${(mini.ms / simd.ms).toFixed(1)}×`,
      "≥ 15×",
      mini.ms / simd.ms >= 15,
    );
  const js = find(size, "step", "js"),
    naive = find(size, "step", "naive JS loop");
  if (js && naive)
    target(
      `js step at ${size}: faster than the naive loop`,
      `${(naive.ms / js.ms).toFixed(1)}× (wasm-simd ${(naive.ms / simd.ms).toFixed(0)}×)`,
      "≥ 3×",
      naive.ms / js.ms >= 3,
    );
}
target("SIMD .wasm size", `${(wasmFiles[0].bytes / 1024).toFixed(1)} KB`, "≤ 40 KB", wasmFiles[0].bytes <= 40 * 1024);
target("init() from cold in Node", `${cold.initMs.toFixed(2)} ms`, "≤ 5 ms", cold.initMs <= 5);
for (const s of steady) {
  const flat = s.heapAfter - s.heapBefore <= 64 * 1024 && s.wasmAfter === s.wasmBefore;
  target(
    `${s.backend}: heap and memory over ${s.steps.toExponential(0).replace("e+", "·10^")} steps at A`,
    `heap ${fmtBytes(s.heapAfter - s.heapBefore)} after gc, wasm memory ${fmtBytes(s.wasmAfter - s.wasmBefore)}; ${s.bytesPerStep === null ? "?" : s.bytesPerStep.toFixed(0)} B allocated per step, ${s.gcsDuring} minor GCs`,
    "flat",
    flat,
  );
}

/** @param {number} n */
function fmtBytes(n) {
  const sign = n < 0 ? "−" : "+";
  const a = Math.abs(n);
  return a < 1024 ? `${sign}${a} B` : `${sign}${(a / 1024).toFixed(1)} KB`;
}
const fmtMs = (/** @type {number} */ ms) =>
  ms >= 100
    ? ms.toFixed(0)
    : ms >= 10
      ? ms.toFixed(1)
      : ms >= 1
        ? ms.toFixed(2)
        : ms >= 0.1
          ? ms.toFixed(3)
          : ms.toFixed(4);

const md = [];
const cpu = cpus()[0]?.model ?? "unknown CPU";
md.push(`## entrograd bench`);
md.push("");
md.push(
  `${cpu}, ${cpus().length} cores, Node ${process.version}, ${opt.clock === "cpu" ? "process CPU time" : "wall time"}, median of ${rounds} interleaved rounds${quick ? " (--quick)" : ""}.`,
);
md.push(
  `Load average ${startLoad.map((v) => v.toFixed(1)).join("/")} at the start, ${endLoad.map((v) => v.toFixed(1)).join("/")} at the end (1/5/15 min).`,
);
md.push(
  `Peak: ${peak.gflops.toFixed(1)} GFLOP/s, a register-resident f32x4 mul+add loop with ${peak.accumulators} accumulators (${peakRows.map((p) => `${p.accumulators}: ${p.gflops.toFixed(1)}`).join(", ")}).`,
);
if (tfjs)
  md.push(
    `TensorFlow.js ${tfjs.version}, wasm backend running \`${tfjs.binary.file.split("/").pop()}\` (SIMD ${tfjs.binary.simd ? "yes" : "no"}, threads ${tfjs.binary.threads ? "yes" : "no"}).`,
  );
md.push(
  `Flops per op: step and gradients 4·batch·inputs·outputs, forward and entropy 2·batch·inputs·outputs. ×simd: time relative to wasm-simd (higher is slower).`,
);
md.push("");
for (const op of ops) {
  md.push(`### ${op}`);
  md.push("");
  md.push("| size (in, out, batch) | contender | ms/op | GFLOP/s | ×simd | % of peak |");
  md.push("| --- | --- | ---: | ---: | ---: | ---: |");
  for (const size of sizes) {
    const s = SIZES[size];
    for (const r of rows.filter((q) => q.size === size && q.op === op)) {
      md.push(
        `| ${size} (${s.inputs}, ${s.outputs}, ${s.batch}) | ${r.contender} | ${fmtMs(r.ms)} | ${r.gflops.toFixed(2)} | ${r.vsSimd === null ? "" : r.vsSimd.toFixed(1)} | ${(100 * r.ofPeak).toFixed(0)}% |`,
      );
    }
  }
  md.push("");
}
md.push("### targets");
md.push("");
md.push("| target | measured | goal | |");
md.push("| --- | --- | --- | --- |");
for (const t of targets) md.push(`| ${t.what} | ${t.value} | ${t.goal} | ${t.met ? "met" : "**missed**"} |`);
md.push("");
md.push(
  `init() from cold: ${cold.initMs.toFixed(2)} ms (median of ${cold.runs.length} fresh processes; importing the package took ${cold.importMs.toFixed(1)} ms more); backend ${cold.backend}.`,
);
md.push(`Modules: ${wasmFiles.map((f) => `${f.file} ${f.bytes} bytes (${f.gzip} gzipped)`).join(", ")}.`);
md.push(
  `Entropies agree across contenders at every size: ${Object.entries(checks)
    .map(([s, c]) => `${s} ${c.maxRelativeDifference.toExponential(1)}`)
    .join(", ")} (max relative difference).`,
);
md.push("");
const text = md.join("\n");

const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpu,
  cores: cpus().length,
  clock: opt.clock,
  rounds,
  sampleMs,
  quick,
  loadavg: { start: startLoad, end: endLoad },
  peak,
  peakRows,
  tfjs: tfjs && { version: tfjs.version, binary: tfjs.binary },
  rows,
  targets,
  cold,
  steady,
  wasmFiles,
  checks,
  seconds: (performance.now() - t0) / 1000,
};
mkdirSync(opt.out, { recursive: true });
const stamp = result.date.replace(/[:.]/g, "-");
writeFileSync(`${opt.out}/bench-${stamp}.json`, JSON.stringify(result, null, 2));
writeFileSync(`${opt.out}/bench-${stamp}.md`, text);
writeFileSync(`${opt.out}/latest.json`, JSON.stringify(result, null, 2));
writeFileSync(`${opt.out}/latest.md`, text);
console.log(text);
log(`done in ${result.seconds.toFixed(0)} s; results in ${opt.out}latest.{md,json}`);
