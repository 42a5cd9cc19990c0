// Concurrency (issue 7): many models on one core instance, calls interleaved, async training loops
// running side by side, models disposed in the middle. Every model must end bitwise where it
// ends when run alone, and views of one model must not change under work on another (growth may
// only detach them).
import { beforeAll, describe, expect, it } from "vitest";
import { Adam, fit, init, Model, SGD, memoryBytes } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, bits } from "./helpers";

beforeAll(async () => {
  await init();
});

type AnyModel = InstanceType<typeof Model>;

interface Plan {
  inputs: number;
  outputs: number;
  seed: number;
  adam: boolean;
  batches: number[];
}

function plans(n: number, seed: number): Plan[] {
  const rng = new ref.Rng(seed);
  return Array.from({ length: n }, (_, k) => ({
    inputs: rng.int(1, 40),
    outputs: rng.int(1, 12),
    seed: k + 1,
    adam: rng.next() < 0.5,
    batches: Array.from({ length: 12 }, () => (rng.next() < 0.1 ? rng.int(100, 700) : rng.int(1, 33))),
  }));
}

function batchOf(p: Plan, step: number): Float32Array {
  return new ref.Rng(p.seed * 1000 + step).floats(p.batches[step] * p.inputs, -1.5, 1.5);
}

/** Model + optimizer for a plan, and one training step of it. */
function start(p: Plan, backend: Backend) {
  const m = new Model({ inputs: p.inputs, outputs: p.outputs, seed: p.seed, backend });
  const opt = p.adam
    ? new Adam(m, { lr: 0.01, weightDecay: 0.01 })
    : new SGD(m, { lr: 0.05, momentum: 0.9, nesterov: true });
  return {
    m,
    opt,
    step(k: number) {
      const x = batchOf(p, k);
      const targets = new ref.Rng(p.seed * 7 + k).floats((x.length / p.inputs) * p.outputs, 0, 1);
      return k % 3 === 2
        ? opt.step(x, { objective: { crossEntropy: 1, entropy: 0.1 }, targets })
        : opt.step(x, { reduction: k % 2 ? "sum" : "mean" });
    },
  };
}

const snapshot = (m: AnyModel) => [bits(m.w), bits(m.g), bits(m.b)].map((a) => Array.from(a));

describe.each(BACKENDS)("many models on one %s core", (backend) => {
  it("48 models trained with interleaved steps end bitwise as when trained alone, with 12 disposed midway", () => {
    const ps = plans(48, 11);
    // Alone, one after the other.
    const alone = ps.map((p) => {
      const r = start(p, backend);
      const losses = p.batches.map((_, k) => r.step(k).loss);
      const s = { params: snapshot(r.m), losses };
      r.m.dispose();
      return s;
    });
    // Interleaved: step k of every model, then step k + 1; every fourth model disposed at step 6
    // (its memory goes back and is reused by the others' growing batches).
    const runs = ps.map((p) => start(p, backend));
    const losses: number[][] = ps.map(() => []);
    for (let k = 0; k < 12; k++) {
      runs.forEach((r, i) => {
        if (r.m.disposed) return;
        losses[i].push(r.step(k).loss);
        if (k === 6 && i % 4 === 3) r.m.dispose();
      });
    }
    runs.forEach((r, i) => {
      if (i % 4 === 3) {
        expect(losses[i], `model ${i} before its disposal`).toEqual(alone[i].losses.slice(0, 7));
        return;
      }
      expect(losses[i], `model ${i} losses`).toEqual(alone[i].losses);
      expect(snapshot(r.m), `model ${i} parameters`).toEqual(alone[i].params);
      r.m.dispose();
    });
  });

  it("result and parameter views of one model do not change under work on others", () => {
    const ps = plans(16, 23);
    const runs = ps.map((p) => start(p, backend));
    for (const r of runs) r.step(0);
    // Hold views of model 0: its parameters and its last forward's results.
    const a = runs[0];
    const x = batchOf(ps[0], 1);
    const held = { w: a.m.w, b: a.m.b, ...a.m.forward(x) };
    const want = {
      w: Array.from(bits(held.w)),
      b: Array.from(bits(held.b)),
      z: Array.from(bits(held.z)),
      d: Array.from(bits(held.d)),
    };
    const before = memoryBytes(backend);
    // Work on every other model, some with batches that grow memory.
    for (let k = 1; k < 12; k++) for (const r of runs.slice(1)) r.step(k);
    const big = new Model({ inputs: 256, outputs: 64, backend });
    big.forward(new Float32Array(256 * 2048).fill(0.01));
    const grew = memoryBytes(backend) > before;
    for (const key of ["w", "b", "z", "d"] as const) {
      const v = held[key];
      if (v.length === 0) {
        // Detached by growth: allowed, and only then.
        expect(grew, `${key} detached without growth`).toBe(true);
        continue;
      }
      expect(Array.from(bits(v)), `held ${key} of model 0`).toEqual(want[key]);
    }
    // Fresh views of model 0 are right whatever happened.
    expect(Array.from(bits(a.m.w))).toEqual(want.w);
    expect(Array.from(bits(a.m.forward(x).z))).toEqual(want.z);
    for (const r of runs) r.m.dispose();
    big.dispose();
  });

  it("async training loops side by side (fit, which yields to the event loop) end as when run alone", async () => {
    const ps = plans(6, 37).map((p) => ({ ...p, inputs: 8, outputs: 3 }));
    const data = ps.map((p) => new ref.Rng(p.seed).floats(8 * 64, -1, 1));
    const runFit = async (p: Plan, k: number) => {
      const r = start(p, backend);
      const history = await fit(r.m, r.opt, data[k], {
        epochs: 3,
        batchSize: 7,
        shuffle: true,
        seed: p.seed,
        yieldEvery: 0,
      });
      const out = { params: snapshot(r.m), loss: history.loss };
      r.m.dispose();
      return out;
    };
    const alone = [];
    for (let k = 0; k < ps.length; k++) alone.push(await runFit(ps[k], k));
    const together = await Promise.all(ps.map((p, k) => runFit(p, k)));
    expect(together).toEqual(alone);
  });
});
