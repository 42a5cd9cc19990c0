// The threaded backend (issue 15): init({ threads }), threads(), threadInfo(), stopThreads(),
// Model({ threads }). What a call computes is checked against the float64 reference; the split
// over threads against the one-thread backend (every array bitwise, the float64 sums to
// rounding) and against itself (bitwise run to run, whoever ran which chunk). Views kept past
// dispose() on the threaded backend are attacked in views.test.ts; here, in child processes:
// exit never waits for workers, workers end after the last model and start again with the
// next, no SharedArrayBuffer means one thread, and memory stays flat over 10⁴ models.
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { Adam, Adapter, init, Model, SGD, threadInfo, threads } from "entrograd";
import * as ref from "./reference";
import { batchX, bits, expectClose, expectCode, lastLine, targetsFor, tolerances } from "./helpers";

type AnyModel = InstanceType<typeof Model>;

beforeAll(async () => {
  await init({ threads: 2 });
});

/** Shapes (inputs, outputs, batch) above the size from which calls are split (pool.ts,
 *  THRESHOLD), with several chunks per phase: outputs not a multiple of 8, one output, few rows. */
const SPLIT: [number, number, number][] = [
  [128, 64, 32],
  [100, 13, 210],
  [784, 10, 64],
  [300, 1, 900],
  [33, 70, 120],
  [1200, 30, 8],
];

const paramsOf = (m: AnyModel): ref.Params => ({
  inputs: m.inputs,
  outputs: m.outputs,
  w: Array.from(m.w),
  g: Array.from(m.g),
  b: Array.from(m.b),
});

describe("init({ threads }) and the threads option", () => {
  it("starts one worker for two threads, and says so", () => {
    expect(threads()).toBe(2);
    const info = threadInfo();
    expect(info.threads).toBe(2);
    expect(info.workers).toBe(1);
    expect(info.reason).toBe("2 threads");
  });

  it("a model takes threads() by default, fewer when asked, never more; only on wasm-simd", () => {
    expect(new Model({ inputs: 4, outputs: 2 }).threads).toBe(2);
    const one = new Model({ inputs: 4, outputs: 2, threads: 1 });
    expect([one.threads, one.backend]).toEqual([1, "wasm-simd"]);
    expect(new Model({ inputs: 4, outputs: 2, threads: 7 }).threads).toBe(2);
    expect(new Model({ inputs: 4, outputs: 2, backend: "wasm", threads: 2 }).threads).toBe(1);
    expect(new Model({ inputs: 4, outputs: 2, backend: "js", threads: 2 }).threads).toBe(1);
    const m = new Model({ inputs: 4, outputs: 2, seed: 3 });
    expect(m.clone().threads).toBe(2);
    expect(Model.from({ inputs: 4, outputs: 2, w: m.w, threads: 1 }).threads).toBe(1);
    expect(Model.load(m.save(), { threads: 1 }).threads).toBe(1);
    expect(Model.load(m.save()).threads).toBe(2);
  });

  it("bad thread counts are OPTION, in init() and in models", async () => {
    for (const bad of [0, -1, 1.5, 65, Number.NaN, "2", null, true]) {
      await expect(init({ threads: bad as never }), String(bad)).rejects.toMatchObject({ code: "OPTION" });
      if (bad !== 65) expectCode(() => new Model({ inputs: 2, outputs: 1, threads: bad as never }), "OPTION");
    }
    expect(threads(), "a rejected init() leaves the threads as they were").toBe(2);
  });
});

/** Trains a fresh model of a shape for `steps` steps; returns its parameters' bits and losses. */
function train(
  shape: [number, number, number],
  n: number,
  kind: "sgd" | "adam" | "clip" | "adapt" | "targets",
  steps = 4,
): { bits: Uint32Array[]; losses: number[]; model: AnyModel } {
  const [inputs, outputs, batch] = shape;
  const m = new Model({ inputs, outputs, seed: 5, threads: n });
  const rng = new ref.Rng(inputs * 31 + outputs);
  const x = batchX(rng, batch, inputs);
  const targets = targetsFor(rng, batch * outputs);
  const losses: number[] = [];
  if (kind === "adapt") {
    const opt = new SGD(m, { lr: 0.05, groups: { w: { frozen: true } } });
    const tta = new Adapter(m, opt, { maxEntropy: 0.4 * outputs, weighting: "eata", diversity: 0.2, prior: 0.3 });
    for (let s = 0; s < steps; s++) losses.push(tta.step(x).loss);
  } else {
    const opt =
      kind === "adam"
        ? new Adam(m, { lr: 0.01, weightDecay: 0.01 })
        : new SGD(m, { lr: 0.1, momentum: 0.9, nesterov: true, maxGradNorm: kind === "clip" ? 0.01 : 0 });
    const o = kind === "targets" ? { objective: { crossEntropy: 1, entropy: 0.2 }, targets } : undefined;
    for (let s = 0; s < steps; s++) losses.push(opt.step(x, o).loss);
  }
  return { bits: [bits(m.w), bits(m.g), bits(m.b)], losses, model: m };
}

describe("results", () => {
  it("a threaded call computes what the float64 reference does", () => {
    for (const [inputs, outputs, batch] of SPLIT) {
      const m = new Model({ inputs, outputs, seed: 9 });
      expect(m.threads).toBe(2);
      const rng = new ref.Rng(inputs + 7 * outputs);
      const x = batchX(rng, batch, inputs);
      const targets = targetsFor(rng, batch * outputs);
      const objective = { crossEntropy: 0.6, entropy: 0.4 };
      const p = paramsOf(m);
      const e = ref.evaluate(p, x, { objective, targets });
      const tol = tolerances(p, x, e, { objective, targets });
      const f = m.forward(x);
      expectClose(f.z, e.z, tol.z, `${[inputs, outputs, batch]} z`);
      expectClose(f.d, e.d, tol.d, `${[inputs, outputs, batch]} d`);
      const g = m.gradients(x, { objective, targets });
      expect(Math.abs(g.loss - e.loss)).toBeLessThanOrEqual(tol.loss);
      expectClose(g.dw, e.dw, tol.dw, `${[inputs, outputs, batch]} dw`);
      expectClose(g.db, e.db, tol.db, `${[inputs, outputs, batch]} db`);
    }
  });

  it("two threads: every array bitwise the one-thread backend's, the float64 sums to rounding", () => {
    for (const shape of SPLIT) {
      for (const kind of ["sgd", "adam", "adapt", "targets"] as const) {
        const one = train(shape, 1, kind);
        const split = threadInfo().splitCalls;
        const two = train(shape, 2, kind);
        expect(two.model.threads).toBe(2);
        // Above the threshold: every step was split (whether a worker then joined is timing).
        expect(threadInfo().splitCalls - split, `${shape} ${kind}: calls split`).toBe(4);
        expect(two.bits, `${shape} ${kind}: parameters`).toEqual(one.bits);
        two.losses.forEach((l, k) => {
          expect(Math.abs(l - one.losses[k]), `${shape} ${kind}: loss ${k}`).toBeLessThanOrEqual(
            1e-12 * Math.abs(one.losses[k]),
          );
        });
      }
    }
  });

  it("with clipping, whose coefficient comes from a float64 norm, within float32 rounding", () => {
    for (const shape of SPLIT) {
      const one = train(shape, 1, "clip", 6);
      const two = train(shape, 2, "clip", 6);
      const a = one.model.w,
        b = two.model.w;
      for (let i = 0; i < a.length; i++)
        expect(Math.abs(a[i] - b[i]), `${shape} w[${i}]`).toBeLessThanOrEqual(4e-7 * Math.abs(a[i]) + 1e-12);
    }
  });

  it("bitwise the same run to run, whichever thread ran which chunk", () => {
    for (const shape of SPLIT) {
      for (const kind of ["sgd", "adam", "clip", "adapt"] as const) {
        const a = train(shape, 2, kind, 6);
        const b = train(shape, 2, kind, 6);
        expect(b.bits, `${shape} ${kind}`).toEqual(a.bits);
        expect(b.losses, `${shape} ${kind}`).toEqual(a.losses);
      }
    }
  });

  it("below the threshold a call runs on the calling thread: bitwise the one-thread backend, sums too", () => {
    for (const shape of [
      [16, 4, 8],
      [40, 10, 32],
      [64, 16, 32],
      [250, 30, 34],
    ] as [number, number, number][]) {
      const one = train(shape, 1, "adam");
      const split = threadInfo().splitCalls;
      const two = train(shape, 2, "adam");
      expect(threadInfo().splitCalls, `${shape}: calls split`).toBe(split);
      expect(two.bits).toEqual(one.bits);
      expect(two.losses).toEqual(one.losses);
    }
  });

  it("failures give the one-thread backend's codes and leave the state as it was", () => {
    const [inputs, outputs, batch] = SPLIT[0];
    for (const n of [1, 2]) {
      const m = new Model({ inputs, outputs, seed: 2, threads: n });
      const opt = new Adam(m, { lr: 0.01 });
      const x = batchX(new ref.Rng(1), batch, inputs);
      opt.step(x);
      const before = [bits(m.w), bits(m.g), bits(m.b), JSON.stringify(opt.stateDict().state.w.step)];
      const bad = x.slice();
      bad[bad.length - 3] = Number.NaN;
      expectCode(() => opt.step(bad), "NON_FINITE", `NaN in x, ${n} threads`);
      const targets = new Float32Array(batch * outputs).fill(0.5);
      targets[7] = 2;
      expectCode(
        () => opt.step(x, { objective: { crossEntropy: 1 }, targets }),
        "OPTION",
        `a target of 2, ${n} threads`,
      );
      targets[7] = Number.POSITIVE_INFINITY;
      expectCode(
        () => opt.step(x, { objective: { crossEntropy: 1 }, targets }),
        "NON_FINITE",
        `an infinite target, ${n} threads`,
      );
      expect([bits(m.w), bits(m.g), bits(m.b), JSON.stringify(opt.stateDict().state.w.step)]).toEqual(before);
    }
  });
});

/** Runs a script in a child Node (flags first) against the built package; its last JSON line and
 *  how long it took. */
function child(body: string, flags: string[] = []): { out: Record<string, unknown>; ms: number } {
  const dist = new URL("../dist/index.js", import.meta.url).href;
  const script = `
    import { init, Model, SGD, threads, threadInfo, stopThreads } from ${JSON.stringify(dist)};
    const settle = async () => { for (let k = 0; k < 4; k++) { globalThis.gc?.(); await new Promise((r) => setTimeout(r, 2)); } };
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    ${body}`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const ms = Date.now() - t0;
  expect(r.status, r.stderr).toBe(0);
  return { out: JSON.parse(lastLine(r.stdout)), ms };
}

describe("workers' lifetime (child processes)", () => {
  it("a process ends without waiting for its workers: models neither disposed nor stopped", () => {
    const { out, ms } = child(`
      await init({ threads: 2 });
      const m = new Model({ inputs: 256, outputs: 64 });
      const opt = new SGD(m, { lr: 0.01 });
      const x = new Float32Array(128 * 256).fill(0.1);
      for (let k = 0; k < 20; k++) opt.step(x);
      console.log(JSON.stringify({ threads: threads(), workers: threadInfo().workers }));`);
    expect(out).toEqual({ threads: 2, workers: 1 });
    // Startup (Node, the package, a worker) takes well under this; a worker holding the
    // process would keep it to the spawnSync time-out.
    expect(ms).toBeLessThan(20_000);
  });

  it("workers end after the last model and start again with the next; stopThreads() ends them now", () => {
    const { out } = child(`
      await init({ threads: 2 });
      const x = new Float32Array(64 * 256).fill(0.1);
      const run = () => { const m = new Model({ inputs: 256, outputs: 64, seed: 1 }); const o = new SGD(m, { lr: 0.01 }); for (let k = 0; k < 5; k++) o.step(x); const w = Array.from(m.w.slice(0, 64)).join(); m.dispose(); return w; };
      const first = run();
      const during = threadInfo().workers;
      await sleep(3000); // > 2 s after the last model (pool.ts, IDLE_MS)
      const after = threadInfo().workers;
      const m = new Model({ inputs: 256, outputs: 64, seed: 1 });
      await sleep(1000);
      const again = threadInfo().workers;
      m.dispose();
      const second = run();
      stopThreads();
      const stopped = [threads(), threadInfo().workers];
      const third = run(); // threads() is 1 now: the one-thread backend, the same parameters
      console.log(JSON.stringify({ during, after, again, stopped, same: first === second && second === third }));`);
    expect(out).toEqual({ during: 1, after: 0, again: 1, stopped: [1, 0], same: true });
  });

  it("no SharedArrayBuffer: one thread, and threadInfo() says why", () => {
    const { out } = child(
      `
      const name = await init({ threads: 2 });
      const m = new Model({ inputs: 8, outputs: 2 });
      console.log(JSON.stringify({ name, threads: threads(), model: m.threads, reason: threadInfo().reason }));`,
      ["--no-harmony-sharedarraybuffer"],
    );
    expect(out).toMatchObject({ name: "wasm-simd", threads: 1, model: 1 });
    expect(out.reason).toMatch(/SharedArrayBuffer/);
  });

  it("10⁴ threaded models with views read, disposed or dropped: the shared memories held stay few and small", () => {
    const { out } = child(
      `
      await init({ threads: 2 });
      const x = new Float32Array(16 * 8).fill(0.25);
      const kept = [];
      const churn = async (n, dispose) => {
        for (let k = 0; k < n; k++) {
          const m = new Model({ inputs: 16, outputs: 4 });
          m.w[0];
          m.gradients(x);
          if (k % 1000 === 0) kept.push(m.forward(x).z);
          if (dispose) m.dispose();
          else if (k % 500 === 499) await settle();
        }
        await settle();
      };
      const out = {};
      for (const [name, dispose] of [["disposed", true], ["dropped", false]]) {
        await churn(10000, dispose);
        out[name] = threadInfo();
      }
      console.log(JSON.stringify(out));`,
      ["--expose-gc"],
    ) as { out: Record<string, { memories: number; memoryBytes: number }> };
    for (const [name, info] of Object.entries(out)) {
      expect(info.memories, `${name}: ${JSON.stringify(info)}`).toBeLessThanOrEqual(2);
      expect(info.memoryBytes, `${name}: ${JSON.stringify(info)}`).toBeLessThanOrEqual(16 * 2 ** 20);
    }
  });
});
