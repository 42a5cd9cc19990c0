// Soak test of entrograd (issue 7): long training runs with changing batch sizes, models and
// optimizers created and dropped in a loop (some disposed, some only left to the garbage
// collector; their views read, their gradients taken, views kept past dispose() and written with
// garbage), checking that the JS heap and every core's WebAssembly memory stay flat and that a
// long-lived model computes exactly what a fresh model with its parameters computes.
//
//   node --expose-gc test/soak/driver.mjs         the long version (npm run soak): 10^6 steps at a
//                                                small size, 10^4 at a large one, 10^4 models
//   node --expose-gc test/soak/driver.mjs --short the version inside the test run (test/soak.test.ts)
//   options: --steps N --large-steps N --models N --seed N --json (figures only)
//
// Prints progress on stderr and one JSON line of figures on stdout; exits 1 if a check failed.

import { performance } from "node:perf_hooks";

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const num = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SHORT = flag("short");
const SMALL_STEPS = num("steps", SHORT ? 20_000 : 1_000_000);
const OTHER_STEPS = Math.round(SMALL_STEPS / 5); // the wasm and js cores, small size
const LARGE_STEPS = num("large-steps", SHORT ? 60 : 10_000);
const MODELS = num("models", SHORT ? 600 : 10_000);
const SEED = num("seed", 1);

if (typeof globalThis.gc !== "function") {
  console.error("soak: run with node --expose-gc (npm run soak does)");
  process.exit(2);
}

const pkg = await import(new URL("../../dist/index.js", import.meta.url).href);
const { init, Model, SGD, Adam, memoryBytes } = pkg;
await init();

const log = (...a) => console.error("[soak]", ...a);
const failures = [];
const check = (ok, what) => {
  if (!ok) {
    failures.push(what);
    log("FAILED:", what);
  }
};

/** mulberry32 */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lets FinalizationRegistry callbacks run, then collects again. */
async function settle() {
  for (let k = 0; k < 4; k++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function memory() {
  await settle();
  const m = process.memoryUsage();
  return {
    heapUsed: m.heapUsed,
    arrayBuffers: m.arrayBuffers,
    wasmSimd: memoryBytes("wasm-simd"),
    wasm: memoryBytes("wasm"),
  };
}

const MB = (b) => Math.round((b / 2 ** 20) * 100) / 100;
const bitsEqual = (a, b) =>
  a.length === b.length &&
  new Uint32Array(a.buffer, a.byteOffset, a.length).every(
    (v, i) => v === new Uint32Array(b.buffer, b.byteOffset, b.length)[i],
  );

/** A pool of batches of changing sizes (allocated once, so the loop allocates nothing itself). */
function batches(inputs, outputs, seed, sizes) {
  const r = rng(seed);
  return sizes.map((n) => ({
    x: Float32Array.from({ length: n * inputs }, () => r() * 4 - 2),
    targets: Float32Array.from({ length: n * outputs }, () => r()),
  }));
}

/** The long-lived model equals a fresh model with its parameters: same forward and gradients, bit
 *  for bit, on a probe batch; its optimizer state restores into a fresh optimizer that continues
 *  identically. */
function equalsFresh(m, opt, makeOpt, probe, label) {
  const fresh = Model.from({ inputs: m.inputs, outputs: m.outputs, w: m.w, g: m.g, b: m.b, backend: m.backend });
  const a = m.forward(probe).z.slice(),
    b = fresh.forward(probe).z.slice();
  check(bitsEqual(a, b), `${label}: forward differs from a fresh model's`);
  const ga = m.gradients(probe, { reduction: "sum" }).dw.slice(),
    gb = fresh.gradients(probe, { reduction: "sum" }).dw.slice();
  check(bitsEqual(ga, gb), `${label}: gradients differ from a fresh model's`);
  // The optimizer state moves to a fresh optimizer on the fresh model: the next steps agree.
  const twin = makeOpt(fresh);
  twin.loadStateDict(structuredClone(opt.stateDict()));
  const clone = m.clone();
  const cloneOpt = makeOpt(clone);
  cloneOpt.loadStateDict(structuredClone(opt.stateDict()));
  for (let k = 0; k < 3; k++) {
    cloneOpt.step(probe);
    twin.step(probe);
  }
  check(bitsEqual(clone.w, fresh.w) && bitsEqual(clone.b, fresh.b), `${label}: a restored optimizer diverged`);
  clone.dispose();
  fresh.dispose();
}

const figures = { short: SHORT, seed: SEED, phases: {} };

// ---- 1. small models, many steps, changing batch sizes ------------------------------------------

async function smallRun(backend, steps, seed) {
  const inputs = 8,
    outputs = 4;
  const r = rng(seed);
  const sizes = Array.from({ length: 64 }, (_, k) => (k === 7 ? 512 : 1 + Math.floor(r() * 48)));
  const pool = batches(inputs, outputs, seed, sizes);
  const probe = pool[3].x;
  const m = new Model({ inputs, outputs, seed, backend });
  const adam = backend !== "wasm";
  const makeOpt = (model) =>
    adam ? new Adam(model, { lr: 1e-3, weightDecay: 1e-4 }) : new SGD(model, { lr: 0.01, momentum: 0.9 });
  const opt = makeOpt(m);
  // Warm-up: one pass over every batch size (capacity reaches its largest).
  for (let k = 0; k < pool.length; k++) opt.step(pool[k].x);
  const before = await memory();
  const t0 = performance.now();
  const checkEvery = Math.max(1000, Math.floor(steps / 20));
  let lastLoss = NaN;
  for (let s = 0; s < steps; s++) {
    const b = pool[s % pool.length];
    // A step in three: cross-entropy to targets with the entropy term, else the entropy alone.
    const res =
      s % 3 === 0
        ? opt.step(b.x, { objective: { crossEntropy: 1, entropy: 0.05 }, targets: b.targets })
        : opt.step(b.x, { reduction: s & 1 ? "sum" : "mean" });
    lastLoss = res.loss;
    if (s % checkEvery === checkEvery - 1) {
      check(Number.isFinite(res.loss), `${backend}: loss ${res.loss} at step ${s}`);
      equalsFresh(m, opt, makeOpt, probe, `${backend} step ${s}`);
      if (!SHORT) log(`${backend}: ${s + 1} steps, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await memory();
  const params = [m.w, m.g, m.b].every((v) => v.every(Number.isFinite));
  check(params, `${backend}: parameters not finite after ${steps} steps`);
  m.dispose();
  return {
    backend,
    steps,
    seconds: Math.round(seconds * 100) / 100,
    stepsPerSecond: Math.round(steps / seconds),
    lastLoss,
    before,
    after,
  };
}

// ---- 2. a large model -----------------------------------------------------------------------------

async function largeRun(steps, seed) {
  const inputs = 784,
    outputs = 128;
  const r = rng(seed);
  const sizes = Array.from({ length: 12 }, (_, k) => (k === 5 ? 256 : 16 + Math.floor(r() * 112)));
  const pool = batches(inputs, outputs, seed, sizes);
  const m = new Model({ inputs, outputs, seed, backend: "wasm-simd" });
  const makeOpt = (model) => new Adam(model, { lr: 1e-3 });
  const opt = makeOpt(m);
  for (const b of pool) opt.step(b.x);
  equalsFresh(m, opt, makeOpt, pool[1].x, "large, warm-up"); // its models belong to the working set
  const before = await memory();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const b = pool[s % pool.length];
    opt.step(b.x, s % 4 === 0 ? { objective: { crossEntropy: 1 }, targets: b.targets } : undefined);
    if (s % Math.max(50, Math.floor(steps / 10)) === 0 && s > 0) {
      equalsFresh(m, opt, makeOpt, pool[1].x, `large step ${s}`);
      if (!SHORT) log(`large: ${s} steps, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  equalsFresh(m, opt, makeOpt, pool[1].x, "large, end");
  const after = await memory();
  m.dispose();
  return {
    inputs,
    outputs,
    steps,
    seconds: Math.round(seconds * 100) / 100,
    stepsPerSecond: Math.round(steps / seconds),
    before,
    after,
  };
}

// ---- 3. models and optimizers created and dropped in a loop ---------------------------------------

/** What the churn read through views (kept so the reads are not optimised away). */
let sink = 0;

/** Garbage through a view: words pointing into the memory, small whole numbers, NaN bits and
 *  random words (a detached view takes nothing). */
function garble(v, r) {
  if (v.length === 0) return;
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  for (let j = 0; j < u.length; j++) {
    const q = j & 3;
    u[j] = q === 0 ? (r() * v.buffer.byteLength) & ~15 : q === 1 ? j % 3 : q === 2 ? 0x7fc00000 : r() * 2 ** 32;
  }
}

async function churn(count, seed) {
  const backends = ["wasm-simd", "wasm", "js"];
  const x = Float32Array.from({ length: 64 * 40 }, (_, k) => Math.sin(k * 0.7));
  // A long-lived model and optimizer per backend, among the churn: the views the churn keeps
  // and writes must never reach them (issue 12, cause 1). Checked after every round.
  const sentinels = backends.map((backend) => {
    const m = new Model({ inputs: 12, outputs: 5, seed, backend });
    const makeOpt = (model) => new SGD(model, { lr: 0.01, momentum: 0.9 });
    const opt = makeOpt(m);
    opt.step(x.subarray(0, 12 * 8));
    return { m, opt, makeOpt, backend, params: [m.w.slice(), m.g.slice(), m.b.slice()] };
  });
  const checkSentinels = (label) => {
    for (const s of sentinels) {
      const same = [s.m.w, s.m.g, s.m.b].every((v, i) => bitsEqual(v, s.params[i]));
      check(same, `${label}: a kept view reached the ${s.backend} sentinel's parameters`);
      equalsFresh(s.m, s.opt, s.makeOpt, x.subarray(0, 12 * 3), `${label}, ${s.backend} sentinel`);
    }
  };
  // One round is the same sequence every time (same seed): repeating it must not grow anything.
  const round = async (n) => {
    const r = rng(seed);
    let disposed = 0,
      dropped = 0;
    // Views of models this loop is done with (disposed or dropped), written with garbage from a
    // generator of its own (how many words it takes depends on which views were detached).
    const kept = [];
    const noise = rng(seed + 1);
    for (let k = 0; k < n; k++) {
      const backend = backends[k % 3];
      const inputs = 1 + Math.floor(r() * 40),
        outputs = 1 + Math.floor(r() * 24);
      const m = new Model({ inputs, outputs, seed: k, backend });
      const opt = k % 2 ? new Adam(m, { lr: 1e-3 }) : new SGD(m, { lr: 0.01, momentum: 0.5 });
      // Views kept past dispose() (or past their model's last use) are written now, while this
      // model (which may have the memory they viewed) lives: they must reach no memory another
      // model, optimizer or the allocator uses (issue 12, cause 1).
      for (const v of kept) garble(v, noise);
      const batch = 1 + Math.floor(r() * Math.floor(x.length / inputs / 2));
      const loss = opt.step(x.subarray(0, batch * inputs)).loss;
      check(Number.isFinite(loss), `churn: model ${k}'s loss is ${loss}`);
      m.forward(x.subarray(0, inputs));
      // Views read and gradients taken, as users do: neither may keep the model (or its memory)
      // alive, disposed or not (issue 12, cause 2).
      sink += m.w[0] + m.g[0] + m.b[0] + m.gradients(x.subarray(0, batch * inputs)).dw[0];
      kept.push(m.w, m.b, m.input(1 + (k % 5)), m.forward(x.subarray(0, inputs)).z);
      if (k % 3 === 0) {
        dropped++; // never disposed: the FinalizationRegistry gets it back
      } else {
        m.dispose();
        disposed++;
      }
      kept.splice(0, Math.max(0, kept.length - 32));
      if (k % 50 === 49) await settle();
    }
    return { disposed, dropped };
  };
  const per = Math.min(count, 1000);
  await round(per); // warm-up: memory reaches its working size
  const before = await memory();
  const t0 = performance.now();
  const counts = { disposed: 0, dropped: 0 };
  const rounds = Math.max(1, Math.round(count / per));
  for (let k = 0; k < rounds; k++) {
    const c = await round(per);
    counts.disposed += c.disposed;
    counts.dropped += c.dropped;
    checkSentinels(`churn round ${k}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await memory();
  for (const s of sentinels) s.m.dispose();
  return { models: rounds * per, ...counts, seconds: Math.round(seconds * 100) / 100, before, after };
}

/** A new optimizer per phase on one long-lived model (each dropped, never disposed). */
async function optimizerChurn(count, seed) {
  const m = new Model({ inputs: 128, outputs: 32, seed, backend: "wasm-simd" });
  const x = Float32Array.from({ length: 128 * 16 }, (_, k) => Math.sin(k + seed));
  const phase = async (n) => {
    for (let k = 0; k < n; k++) {
      const opt = k % 2 ? new Adam(m, { lr: 1e-4 }) : new SGD(m, { lr: 1e-3, momentum: 0.9 });
      opt.step(x);
      if (k % 25 === 24) await settle();
    }
  };
  await phase(100);
  const before = await memory();
  await phase(count);
  const after = await memory();
  m.dispose();
  return { optimizers: count, before, after };
}

// ---- run ----------------------------------------------------------------------------------------

const t0 = performance.now();
const start = await memory();
log(
  `start: heap ${MB(start.heapUsed)} MB, wasm-simd ${MB(start.wasmSimd)} MB, wasm ${MB(start.wasm)} MB${SHORT ? " (short)" : ""}`,
);

const small = [];
small.push(await smallRun("wasm-simd", SMALL_STEPS, SEED));
small.push(await smallRun("wasm", OTHER_STEPS, SEED + 1));
small.push(await smallRun("js", OTHER_STEPS, SEED + 2));
for (const s of small) log(`small ${s.backend}: ${s.steps} steps in ${s.seconds} s (${s.stepsPerSecond}/s)`);
figures.phases.small = small;
const large = await largeRun(LARGE_STEPS, SEED + 3);
log(`large ${large.inputs}×${large.outputs}: ${large.steps} steps in ${large.seconds} s`);
figures.phases.large = large;
const models = await churn(MODELS, SEED + 4);
log(
  `churn: ${models.models} models (${models.disposed} disposed, ${models.dropped} left to the GC) in ${models.seconds} s`,
);
figures.phases.models = models;
check(Number.isFinite(sink), `churn: a value read through a view is ${sink}`);
const optimizers = await optimizerChurn(SHORT ? 200 : 5000, SEED + 5);
figures.phases.optimizers = optimizers;
const end = await memory();

// Flatness: WebAssembly memory never shrinks, so "flat" means it did not grow once each phase's
// working size was reached; the heap may move by a few MB of JIT feedback and caches.
const HEAP_SLACK = 8 * 2 ** 20;
for (const [name, p] of [
  ...small.map((s) => [`small ${s.backend}`, s]),
  ["large", large],
  ["models", models],
  ["optimizers", optimizers],
]) {
  check(
    p.after.wasmSimd === p.before.wasmSimd,
    `${name}: wasm-simd memory grew ${MB(p.before.wasmSimd)} → ${MB(p.after.wasmSimd)} MB`,
  );
  check(p.after.wasm === p.before.wasm, `${name}: wasm memory grew ${MB(p.before.wasm)} → ${MB(p.after.wasm)} MB`);
  check(
    p.after.heapUsed - p.before.heapUsed < HEAP_SLACK,
    `${name}: heap grew ${MB(p.before.heapUsed)} → ${MB(p.after.heapUsed)} MB`,
  );
}
figures.start = start;
figures.end = end;
figures.seconds = Math.round((performance.now() - t0) / 10) / 100;
figures.failures = failures;
log(
  `end: heap ${MB(end.heapUsed)} MB, wasm-simd ${MB(end.wasmSimd)} MB, wasm ${MB(end.wasm)} MB; ${figures.seconds} s; ${failures.length} failures`,
);
console.log(JSON.stringify(figures));
process.exit(failures.length === 0 ? 0 : 1);
