// Forward, entropy (every reduction), objectives and gradients against the float64 reference,
// on every backend, over odd shapes and over inputs large enough that |z| reaches 1e4.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model } from "entrograd";
import * as ref from "./reference";
import {
  BACKENDS,
  EPS32,
  batchX,
  expectClose,
  expectCloseNumber,
  paramsOf,
  perUnit,
  targetsFor,
  tolerances,
  type Backend,
} from "./helpers";

beforeAll(async () => {
  await init();
});

// (inputs, outputs, batch): the odd sizes 1, 3, 5, 17, 33, 257 in every position.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 17],
  [17, 3, 5],
  [33, 17, 3],
  [257, 5, 33],
  [5, 33, 257],
];

const OBJECTIVES: (ref.EvalOptions["objective"] | undefined)[] = [
  undefined, // default: { entropy: 1 }
  { entropy: 1 },
  { crossEntropy: 1 },
  { crossEntropy: 1, entropy: 0.1 },
  { entropy: 0.5, crossEntropy: 2 },
  { crossEntropy: 1, entropy: -0.25 }, // a negative weight: entropy rewarded (only non-finite is an error)
];
const REDUCTIONS: ref.Reduction[] = ["mean", "sum", "none"];

/** A model with random w, g and b (all three non-zero, so z = x·(W+G)ᵀ + b is fully exercised). */
function randomModel(backend: Backend, inputs: number, outputs: number, seed: number, scale = 1) {
  const rng = new ref.Rng(seed);
  const s = scale / Math.sqrt(inputs);
  const m = Model.from({
    inputs,
    outputs,
    w: rng.floats(inputs * outputs, -s, s),
    g: rng.floats(inputs * outputs, -s / 2, s / 2),
    b: rng.floats(outputs, -0.5, 0.5),
    backend,
  });
  return { m, rng };
}

/** Checks forward, entropy under all reductions, and gradients under all reductions × objectives. */
function checkEverything(m: InstanceType<typeof Model>, x: Float32Array, targets: Float32Array, label: string) {
  const p = paramsOf(m);
  const base = ref.evaluate(p, x);
  const tol = tolerances(p, x, base);

  const f = m.forward(x);
  const z = Array.from(f.z);
  const d = Array.from(f.d);
  expectClose(z, base.z, tol.z, `${label} forward z`);
  expectClose(d, base.d, tol.d, `${label} forward d`);

  const none = perUnit(m.entropy(x, { reduction: "none" }), "entropy none");
  expectClose(none, base.unitEntropy, tol.unitEntropy, `${label} entropy none`);
  const kept = none.slice();
  for (const reduction of ["mean", "sum"] as const) {
    const e = ref.evaluate(p, x, { reduction });
    const t = tolerances(p, x, e, { reduction });
    const got = m.entropy(x, { reduction });
    expect(typeof got, `${label} entropy ${reduction} is a number`).toBe("number");
    expectCloseNumber(got, e.entropy, t.entropy, `${label} entropy ${reduction}`);
  }
  expectCloseNumber(m.entropy(x), base.entropy, tol.entropy, `${label} entropy default (mean)`);
  // "none" returns a new array: later calls leave it alone.
  expect(Array.from(none), `${label} entropy none survives later calls`).toEqual(Array.from(kept));

  for (const reduction of REDUCTIONS)
    for (const objective of OBJECTIVES) {
      const opts: ref.EvalOptions = { reduction, objective, targets: objective?.crossEntropy ? targets : undefined };
      const what = `${label} gradients ${reduction} ${JSON.stringify(objective ?? "default")}`;
      const e = ref.evaluate(p, x, opts);
      const t = tolerances(p, x, e, opts);
      const call: Record<string, unknown> = { reduction };
      if (objective) call.objective = objective;
      if (opts.targets) call.targets = opts.targets;
      const r = m.gradients(x, call);
      const dw = Array.from(r.dw);
      const dg = Array.from(r.dg);
      const db = Array.from(r.db);
      if (reduction === "none") {
        expectClose(perUnit(r.loss, `${what} loss`), e.unitLoss, t.unitLoss, `${what} loss`);
        expectClose(perUnit(r.entropy, `${what} entropy`), e.unitEntropy, t.unitEntropy, `${what} entropy`);
      } else {
        expectCloseNumber(r.loss as number, e.loss, t.loss, `${what} loss`);
        expectCloseNumber(r.entropy as number, e.entropy, t.entropy, `${what} entropy`);
      }
      expectClose(dw, e.dw, t.dw, `${what} dw`);
      expectClose(db, e.db, t.db, `${what} db`);
      expect(dg, `${what} dg equals dw`).toEqual(dw);
    }
}

describe.each(BACKENDS)("math on %s", (backend) => {
  it.each(SHAPES)("inputs %i, outputs %i, batch %i", (inputs, outputs, batch) => {
    const { m, rng } = randomModel(backend, inputs, outputs, 1000 + inputs * 7 + outputs * 13 + batch);
    const x = batchX(rng, batch, inputs);
    const targets = targetsFor(rng, batch * outputs);
    checkEverything(m, x, targets, `${backend} ${inputs}x${outputs}x${batch}`);
    m.dispose();
  });

  it("saturated units: inputs scaled until |z| reaches 1e4", () => {
    const inputs = 17;
    const outputs = 5;
    const batch = 9;
    const { m, rng } = randomModel(backend, inputs, outputs, 77);
    const x = batchX(rng, batch, inputs);
    // Scale the batch so the largest |z| is about 2e4; rows get different scales so both
    // moderate and saturated units appear.
    const z0 = ref.forward(paramsOf(m), x).z;
    const zmax = z0.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    for (let n = 0; n < batch; n++) {
      const s = n === 0 ? 1 : (2e4 / zmax) * (n / (batch - 1));
      for (let i = 0; i < inputs; i++) x[n * inputs + i] *= s;
    }
    const zr = ref.forward(paramsOf(m), x).z;
    expect(zr.reduce((a, v) => Math.max(a, Math.abs(v)), 0)).toBeGreaterThanOrEqual(1e4);
    const targets = targetsFor(rng, batch * outputs);
    checkEverything(m, x, targets, `${backend} |z|~1e4`);
    m.dispose();
  });

  it("z = 0 exactly: 1 bit per unit and zero gradient under the entropy objective", () => {
    const m = Model.from({ inputs: 3, outputs: 2, w: new Float32Array(6), backend });
    const x = new Float32Array([1, -2, 3, 0.5, 0.25, -4]);
    // 1 bit per unit; float32 arithmetic (ln2 and 1/ln2 as float32) may miss it by an ulp.
    expectClose(perUnit(m.entropy(x, { reduction: "none" })), [1, 1, 1, 1], 2 * EPS32, "units at z = 0");
    expectCloseNumber(m.entropy(x, { reduction: "sum" }), 4, 8 * EPS32, "sum at z = 0");
    expectCloseNumber(m.entropy(x), 2, 8 * EPS32, "mean at z = 0");
    const r = m.gradients(x, { reduction: "sum" });
    expect(Array.from(r.dw).every((v) => v === 0)).toBe(true);
    expect(Array.from(r.db).every((v) => v === 0)).toBe(true);
    m.dispose();
  });
});
