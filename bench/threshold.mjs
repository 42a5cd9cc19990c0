// The threads' size threshold, measured (docs/threads.md, "Small work stays on one thread"):
// `node bench/threshold.mjs` (after `npm run build`; on a quiet machine: it prints the load).
//
// For shapes from a few hundred to a few million multiply-adds per GEMM (batch × inputs ×
// outputs), times one training step and one forward call on the one-thread backend and split
// over two threads (every call split, whatever THRESHOLD says: a hook the pool reads at init),
// interleaved in rounds, wall clock (the workers' time is not this thread's CPU time), and
// prints the median over rounds of the per-round ratio two/one. THRESHOLD in ts/threads/pool.ts
// is the smallest size from which every larger one measured was at least as fast split.
//
// With --shapes "in,out,batch;…" it times those shapes instead, as users get them (the pool's
// own threshold and tuning, no hook): the one- and two-thread table of the threads' bench.
// --busy keeps another process busy (a spinning loop) for the whole run: the case of a second
// core that is not free. --json prints the rows as JSON instead (npm run bench reads them).

import { spawn } from "node:child_process";
import { availableParallelism, loadavg } from "node:os";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
  options: {
    rounds: { type: "string", default: "9" },
    ms: { type: "string", default: "60" },
    shapes: { type: "string" },
    busy: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const ROUNDS = Number(opt.rounds);
const MS = Number(opt.ms);

if (opt.shapes === undefined)
  /** @type {Record<symbol, unknown>} */ (globalThis)[Symbol.for("entrograd.threads.splitFrom")] = 0;
const { init, Model, SGD, threads } = await import(new URL("../dist/index.js", import.meta.url).href);
await init({ threads: 2 });
if (threads() !== 2) throw new Error("two threads did not start");

// (inputs, outputs, batch), by size.
const THRESHOLD_SHAPES = [
  [16, 4, 8],
  [32, 8, 16],
  [64, 16, 8],
  [64, 16, 16],
  [64, 16, 32],
  [128, 16, 32],
  [64, 64, 32],
  [128, 32, 32],
  [784, 10, 16],
  [128, 64, 32],
  [256, 64, 32],
  [784, 10, 64],
  [256, 64, 64],
  [256, 64, 128],
];
const SHAPES = opt.shapes === undefined ? THRESHOLD_SHAPES : opt.shapes.split(";").map((s) => s.split(",").map(Number));

/**
 * A contender: one call of `op` on a fresh model with `n` threads.
 * @param {number[]} shape (inputs, outputs, batch)
 * @param {number} n
 * @param {string} op "step" or "forward"
 */
function contender(shape, n, op) {
  const [inputs, outputs, batch] = shape;
  const m = new Model({ inputs, outputs, seed: 1, threads: n });
  const sgd = new SGD(m, { lr: 1e-3 });
  const x = m.input(batch);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
  return op === "step" ? () => sgd.step(x) : () => m.forward(x);
}

/**
 * Mean µs per call of `f` over about MS milliseconds.
 * @param {() => unknown} f
 */
function time(f) {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < MS) {
    for (let k = 0; k < 16; k++) f();
    n += 16;
    t = performance.now();
  }
  return ((t - t0) * 1000) / n;
}

/** @param {number[]} v */
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
};

// The busy process: a loop the OS schedules on the other core while we time.
const busy = opt.busy ? spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }) : null;
if (busy !== null) await new Promise((resolve) => setTimeout(resolve, 300));

const load = [loadavg()[0]];
const rows = [];
for (const shape of SHAPES) {
  for (const op of ["step", "forward"]) {
    const one = contender(shape, 1, op);
    const two = contender(shape, 2, op);
    // Warm-up, each as a loop of its own (as a training loop calls one model): called in turns,
    // every two-thread call would wake the worker the one-thread call let sleep, and the pool
    // would rightly keep the shape alone for a while.
    for (let k = 0; k < 200; k++) one();
    for (let k = 0; k < 200; k++) two();
    const t1 = [],
      t2 = [],
      ratio = [];
    for (let r = 0; r < ROUNDS; r++) {
      const [a, b] = r % 2 ? [time(two), time(one)] : [time(one), time(two)];
      const [u1, u2] = r % 2 ? [b, a] : [a, b];
      t1.push(u1);
      t2.push(u2);
      ratio.push(u2 / u1);
    }
    rows.push({
      shape,
      op,
      macs: shape[0] * shape[1] * shape[2],
      one: median(t1),
      two: median(t2),
      ratio: median(ratio),
    });
  }
  load.push(loadavg()[0]);
}

busy?.kill();
if (opt.json) {
  const auto = Math.min(availableParallelism(), 8);
  console.log(JSON.stringify({ busy: opt.busy, rounds: ROUNDS, ms: MS, load, autoThreads: auto, rows }));
  process.exit(0);
}
console.log(
  `load average ${Math.min(...load).toFixed(2)}–${Math.max(...load).toFixed(2)}, ${ROUNDS} rounds of ${MS} ms`,
);
console.log("| (in, out, batch) | multiply-adds | call | 1 thread µs | 2 threads µs | 2/1 |");
console.log("|---|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| (${r.shape.join(", ")}) | ${r.macs} | ${r.op} | ${r.one.toFixed(2)} | ${r.two.toFixed(2)} | ${r.ratio.toFixed(2)} |`,
  );
for (const op of opt.shapes === undefined ? ["step", "forward"] : []) {
  const mine = rows.filter((r) => r.op === op).sort((a, b) => a.macs - b.macs);
  let from = Infinity;
  for (let k = mine.length - 1; k >= 0 && mine[k].ratio <= 1; k--) from = mine[k].macs;
  console.log(`${op}: split from ${from} multiply-adds (every size from there on measured no slower split)`);
}
process.exit(0);
