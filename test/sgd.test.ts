// SGD trajectories against the float64 torch.optim.SGD twin in reference.ts, and the three
// backends against each other.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD } from "entrograd";
import * as ref from "./reference";
import {
  BACKENDS,
  EPS32,
  batchX,
  bits,
  expectClose,
  expectCloseNumber,
  paramsOf,
  targetsFor,
  tolerances,
} from "./helpers";

beforeAll(async () => {
  await init();
});

const INPUTS = 5;
const OUTPUTS = 3;
const BATCH = 8;

/** Four batches (and targets) cycled through by the steps. */
function data(seed: number) {
  const rng = new ref.Rng(seed);
  return Array.from({ length: 4 }, () => ({
    x: batchX(rng, BATCH, INPUTS),
    targets: targetsFor(rng, BATCH * OUTPUTS),
  }));
}

/** Max |v| of a parameter vector: the scale the trajectory tolerance is relative to. */
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

interface Case {
  name: string;
  options: ref.SGDOptions;
  objective?: ref.EvalOptions["objective"];
  reduction?: "mean" | "sum";
}

const CASES: Case[] = [
  { name: "plain", options: { lr: 0.1 } },
  { name: "plain, sum", options: { lr: 0.02 }, reduction: "sum" },
  { name: "plain, cross-entropy", options: { lr: 0.2 }, objective: { crossEntropy: 1 } },
  { name: "plain, mixed objective", options: { lr: 0.2 }, objective: { crossEntropy: 1, entropy: 0.1 } },
  { name: "momentum", options: { lr: 0.05, momentum: 0.9 } },
  { name: "momentum + dampening", options: { lr: 0.05, momentum: 0.9, dampening: 0.3 } },
  { name: "nesterov", options: { lr: 0.05, momentum: 0.9, nesterov: true }, objective: { crossEntropy: 1 } },
  { name: "weight decay", options: { lr: 0.1, weightDecay: 0.05 } },
  { name: "momentum + decay, sum", options: { lr: 0.01, momentum: 0.5, weightDecay: 0.05 }, reduction: "sum" },
  {
    name: "groups",
    options: { lr: 0.1, groups: { w: { lr: 0.05 }, g: { lr: 0.2, weightDecay: 1e-2 }, b: { weightDecay: 0.1 } } },
  },
  {
    name: "groups with momentum",
    options: {
      lr: 0.05,
      momentum: 0.8,
      weightDecay: 0.01,
      groups: { g: { lr: 0.01, weightDecay: 0 }, b: { lr: 0.1 } },
    },
    objective: { crossEntropy: 1, entropy: 0.5 },
  },
  { name: "w frozen", options: { lr: 0.1, momentum: 0.5, groups: { w: { frozen: true } } } },
  { name: "g frozen", options: { lr: 0.1, weightDecay: 0.1, groups: { g: { frozen: true } } } },
  { name: "b frozen", options: { lr: 0.1, groups: { b: { frozen: true } } }, objective: { crossEntropy: 1 } },
];

/** Runs `steps` steps on the model and the reference side by side, comparing every step.
 *  Tolerance: float32 rounding of ~1e−7 per step can grow along the trajectory (the entropy
 *  objective is not convex: it pushes |z| up), so parameters are compared to 3e−5 of the
 *  parameter's scale, and the reported losses to 1e−5 relative: far below any mistake in a rule
 *  (a wrong momentum, decay or lr changes the first steps by ≥ 1e−3). */
function runAgainstReference(
  m: InstanceType<typeof Model>,
  c: Case,
  steps: number,
  seed: number,
  setLrAt?: [number, number],
) {
  const batches = data(seed);
  const opt = new SGD(m, c.options);
  const twin = new ref.ReferenceSGD(paramsOf(m), c.options);
  const frozen = Object.entries(c.options.groups ?? {})
    .filter(([, r]) => r?.frozen)
    .map(([k]) => k as "w" | "g" | "b");
  const start = { w: bits(m.w), g: bits(m.g), b: bits(m.b) };
  for (let s = 0; s < steps; s++) {
    if (setLrAt && s === setLrAt[0]) {
      opt.lr = setLrAt[1];
      twin.lr = setLrAt[1];
      expect(opt.lr).toBeCloseTo(setLrAt[1], 7);
    }
    const { x, targets } = batches[s % batches.length];
    const call: Record<string, unknown> = {};
    if (c.objective) call.objective = c.objective;
    if (c.objective?.crossEntropy) call.targets = targets;
    if (c.reduction) call.reduction = c.reduction;
    const evalOpts = {
      objective: c.objective,
      targets: c.objective?.crossEntropy ? targets : undefined,
      reduction: c.reduction,
    };
    const got = opt.step(x, call);
    const want = twin.step(x, evalOpts);
    const scaleL = Math.abs(want.loss) + Math.abs(want.entropy);
    expectCloseNumber(got.loss, want.loss, 1e-5 * scaleL + 1e-7, `${c.name} step ${s} loss`);
    expectCloseNumber(got.entropy, want.entropy, 1e-5 * scaleL + 1e-7, `${c.name} step ${s} entropy`);
    for (const k of ["w", "g", "b"] as const) {
      if (frozen.includes(k)) {
        expect(Array.from(bits(m[k])), `${c.name} step ${s}: frozen ${k} bitwise unchanged`).toEqual(
          Array.from(start[k]),
        );
        continue;
      }
      const scale = Math.max(maxAbs(twin.p[k]), maxAbs(twin.p.w), 0.1);
      expectClose(Array.from(m[k]), twin.p[k], 3e-5 * scale, `${c.name} step ${s} ${k}`);
    }
  }
  return twin;
}

describe.each(BACKENDS)("SGD on %s", (backend) => {
  it.each(CASES)("$name: 20 steps follow the float64 reference", (c) => {
    const m = new Model({ inputs: INPUTS, outputs: OUTPUTS, seed: 11, backend });
    runAgainstReference(m, c, 20, 123);
    m.dispose();
  });

  it("opt.lr setter takes effect (10 steps at 0.1, then 10 at 0.02)", () => {
    const m = new Model({ inputs: INPUTS, outputs: OUTPUTS, seed: 12, backend });
    runAgainstReference(m, { name: "lr schedule", options: { lr: 0.1, momentum: 0.5 } }, 20, 321, [10, 0.02]);
    m.dispose();
  });

  it("plain SGD is exactly θ ← θ − lr·grad, one step at a time", () => {
    const rng = new ref.Rng(17);
    const m = Model.from({
      inputs: 6,
      outputs: 4,
      w: rng.floats(24, -1, 1),
      g: rng.floats(24, -0.2, 0.2),
      b: rng.floats(4, -0.5, 0.5),
      backend,
    });
    const lr = 0.25;
    const opt = new SGD(m, { lr });
    for (let s = 0; s < 20; s++) {
      const x = batchX(rng, 7, 6);
      const r = m.gradients(x);
      const grads = { w: Array.from(r.dw), g: Array.from(r.dg), b: Array.from(r.db) };
      const before = { w: Array.from(m.w), g: Array.from(m.g), b: Array.from(m.b) };
      const p = paramsOf(m);
      const tol = tolerances(p, x, ref.evaluate(p, x));
      const out = opt.step(x);
      // The step reports the loss before its update: the one gradients() just computed.
      expectCloseNumber(out.loss, r.loss as number, 1e-6 * Math.abs(r.loss as number), `step ${s} loss`);
      for (const k of ["w", "g", "b"] as const) {
        const want = before[k].map((t, i) => t - lr * grads[k][i]);
        // One float32 rounding of the update (≤ ½ ulp of θ and of lr·grad each), plus the
        // float32 gradient bound should the fused step accumulate in another order.
        const gt = k === "b" ? tol.db : tol.dw;
        const t = before[k].map((v, i) => EPS32 * (Math.abs(v) + Math.abs(lr * grads[k][i])) + lr * gt[i]);
        expectClose(Array.from(m[k]), want, t, `step ${s} ${k}`);
      }
    }
    m.dispose();
  });
});

describe("the three backends agree", () => {
  for (const initKind of ["xavier", "uniform", "normal"] as const)
    it(`same seed → same ${initKind} parameters on every backend`, () => {
      const models = BACKENDS.map(
        (backend) => new Model({ inputs: 33, outputs: 17, init: initKind, seed: 2024, backend }),
      );
      const w0 = Array.from(models[2].w);
      for (const m of models) {
        expectClose(Array.from(m.w), w0, 1e-6, `${m.backend} ${initKind} w`);
        expect(Array.from(m.g).every((v) => v === 0)).toBe(true);
        expect(Array.from(m.b).every((v) => v === 0)).toBe(true);
        m.dispose();
      }
    });

  it("50 SGD steps (momentum, nesterov, decay, groups) stay within 1e−4 relative across backends", () => {
    const options: ref.SGDOptions = {
      lr: 0.05,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-3,
      groups: { g: { lr: 0.02 } },
    };
    const batches = data(77);
    const runs = BACKENDS.map((backend) => {
      const m = new Model({ inputs: INPUTS, outputs: OUTPUTS, seed: 5, backend });
      const opt = new SGD(m, options);
      const losses: number[] = [];
      for (let s = 0; s < 50; s++) {
        const { x, targets } = batches[s % 4];
        losses.push(opt.step(x, { objective: { crossEntropy: 1, entropy: 0.2 }, targets }).loss);
      }
      const out = { backend, losses, w: Array.from(m.w), g: Array.from(m.g), b: Array.from(m.b) };
      m.dispose();
      return out;
    });
    const [a, ...rest] = runs;
    for (const r of rest) {
      for (const k of ["w", "g", "b"] as const)
        expectClose(r[k], a[k], 1e-4 * Math.max(maxAbs(a[k]), maxAbs(a.w)), `${r.backend} vs ${a.backend} ${k}`);
      expectClose(
        r.losses,
        a.losses,
        a.losses.map((l) => 1e-4 * Math.abs(l)),
        `${r.backend} vs ${a.backend} losses`,
      );
    }
  });
});
