// Checks that do not trust the formulas: central finite differences of the loss against the
// returned gradients, Simpson quadrature of −(1/ln2)∫ t σ'(t) dt against the entropy, the
// seed's gradient formula, and the fixed point at z = 0.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD, entropyBits, sigmoid } from "entrograd";
import * as ref from "./reference";
import {
  BACKENDS,
  EPS32,
  TINY32,
  batchX,
  bits,
  expectClose,
  paramsOf,
  perUnit,
  snapshot,
  targetsFor,
  tolerances,
} from "./helpers";

beforeAll(async () => {
  await init();
});

/** H(z) = −(1/ln2)∫_{−∞}^{z} t σ'(t) dt by Simpson's rule, without cancellation: t·σ'(t) is odd,
 *  so its integral over the whole line is 0 and, for z > 0, H(z) = (1/ln2)∫_{z}^{∞} t σ'(t) dt.
 *  Either way the integrand keeps one sign and the result keeps its relative accuracy even where
 *  H is 1e−16. The range is cut at ±L, L = 60: what is left out is below 60·e⁻⁶⁰ ≈ 5e−25 (or a
 *  relative e⁻²⁰ for z near L, where H ≈ z·e⁻ᶻ/ln2 itself). Step ≤ 1e−3: Simpson's relative error
 *  is then about h⁴ ≈ 1e−12. */
const L = 60;
const tSlope = (t: number) => t * ref.sigmoidSlope(t);
function entropyByQuadrature(z: number): number {
  if (z <= 0) return z <= -L ? 0 : -ref.simpson(tSlope, -L, z, Math.max(2, Math.ceil((z + L) / 1e-3))) / ref.LN2;
  const top = Math.max(L, z + 40);
  return ref.simpson(tSlope, z, top, Math.max(2, Math.ceil((top - z) / 1e-3))) / ref.LN2;
}
const QUAD_REL = 1e-11;

const Z_GRID = [-40, -25, -12, -6, -3, -1.5, -1, -0.5, -0.1, -1e-3, 0, 1e-3, 0.1, 0.5, 1, 1.5, 3, 6, 12, 25, 40].map(
  Math.fround,
);

describe("helpers entropyBits and sigmoid", () => {
  it("entropyBits(0) is exactly 1 and the quadrature agrees", () => {
    expect(entropyBits(0)).toBe(1);
    expect(Math.abs(entropyByQuadrature(0) - 1)).toBeLessThan(QUAD_REL);
    // The identity the quadrature uses for z > 0: ∫_{−L}^{L} t σ'(t) dt = 0.
    expect(Math.abs(ref.simpson(tSlope, -L, L, 120000))).toBeLessThan(1e-12);
    // And the direct form −(1/ln2)∫_{−L}^{z} agrees with it to f64 cancellation (~1e−15 absolute).
    for (const z of [0.5, 3, 12]) {
      const direct = -ref.simpson(tSlope, -L, z, Math.ceil((z + L) / 1e-3)) / ref.LN2;
      expect(Math.abs(direct - entropyByQuadrature(z))).toBeLessThan(1e-13);
    }
  });

  it("entropyBits matches Simpson quadrature of −(1/ln2)∫ t σ'(t) dt", () => {
    const q = Z_GRID.map(entropyByQuadrature);
    // float32 evaluation of a stable formula: relative error a few ε; quadrature error < 1e−12.
    expectClose(
      Z_GRID.map((z) => entropyBits(z)),
      q,
      q.map((h) => 8 * EPS32 * h + QUAD_REL * h + 1e-300),
      "entropyBits vs quadrature",
    );
  });

  it("entropyBits(±1e4) is 0 within float32 and finite, non-negative, at most 1 everywhere", () => {
    for (const z of [1e4, -1e4]) {
      const h = entropyBits(z);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThanOrEqual(EPS32);
    }
    const zs = [
      3e38, -3e38, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 1e30, -1e30, 88.7, -88.7, 104, -104,
    ];
    for (let k = -45; k <= 38; k++) zs.push(10 ** k, -(10 ** k), 3 * 10 ** k);
    for (const z of zs) {
      const h = entropyBits(z);
      expect(Number.isFinite(h), `entropyBits(${z}) = ${h}`).toBe(true);
      expect(h, `entropyBits(${z})`).toBeGreaterThanOrEqual(0);
      // 1 bit at most, up to rounding of the last float64 digit.
      expect(h, `entropyBits(${z})`).toBeLessThanOrEqual(1 + 4 * Number.EPSILON);
      expect(entropyBits(-z), `entropyBits is even at ${z}`).toBe(h);
    }
  });

  it("sigmoid is σ, bounded and finite for any finite z", () => {
    expect(sigmoid(0)).toBe(0.5);
    const zs = [-3e38, -1e4, -100, -20, -3, -1, -1e-3, 0, 1e-3, 1, 3, 20, 100, 1e4, 3e38];
    for (const z of zs) {
      const s = sigmoid(z);
      expect(Number.isFinite(s), `sigmoid(${z})`).toBe(true);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
      expect(Math.abs(s - ref.sigmoid(z)), `sigmoid(${z})`).toBeLessThanOrEqual(4 * EPS32 * ref.sigmoid(z) + TINY32);
    }
  });
});

describe.each(BACKENDS)("calculus on %s", (backend) => {
  it("per-unit entropies match the quadrature at exact z (one input, x = 1, w = z)", () => {
    const w = new Float32Array(Z_GRID);
    const m = Model.from({ inputs: 1, outputs: w.length, w, backend });
    const h = perUnit(m.entropy(new Float32Array([1]), { reduction: "none" }));
    const q = Z_GRID.map(entropyByQuadrature);
    expectClose(
      h,
      q,
      q.map((v) => 8 * EPS32 * v + QUAD_REL * v + TINY32),
      `${backend} per-unit entropy vs quadrature`,
    );
    m.dispose();
  });

  // Central differences of the float64 reference loss, evaluated at the model's own float32
  // parameters, against the gradients the model returns. This checks δ, the reductions and the
  // transpose in dW = δᵀ·x without using the formula for δ.
  const CASES: { reduction: ref.Reduction; objective: { entropy?: number; crossEntropy?: number } }[] = [];
  for (const reduction of ["mean", "sum", "none"] as const)
    for (const objective of [
      { entropy: 1 },
      { crossEntropy: 1 },
      { crossEntropy: 1, entropy: 0.1 },
      { entropy: 0.5, crossEntropy: 2 },
    ])
      CASES.push({ reduction, objective });

  it.each(CASES)("finite differences: $reduction $objective", ({ reduction, objective }) => {
    const inputs = 3;
    const outputs = 2;
    const batch = 5;
    const rng = new ref.Rng(4242);
    const m = Model.from({
      inputs,
      outputs,
      w: rng.floats(inputs * outputs, -1.5, 1.5),
      g: rng.floats(inputs * outputs, -0.5, 0.5),
      b: rng.floats(outputs, -1, 1),
      backend,
    });
    const x = batchX(rng, batch, inputs, 2);
    const targets = objective.crossEntropy ? targetsFor(rng, batch * outputs) : undefined;
    const opts: ref.EvalOptions = { reduction, objective, targets };
    const r = m.gradients(x, { reduction, objective, ...(targets ? { targets } : {}) });
    const got = { w: Array.from(r.dw), g: Array.from(r.dg), b: Array.from(r.db) };
    const p = paramsOf(m);
    const e = ref.evaluate(p, x, opts);
    const tol = tolerances(p, x, e, opts);
    // "none": the gradients are those of the sum of the per-unit losses.
    const fdOpts: ref.EvalOptions = { ...opts, reduction: reduction === "none" ? "sum" : reduction };
    for (const k of ["w", "g", "b"] as const) {
      const fd: number[] = [];
      const theta = Array.from(p[k]);
      for (let i = 0; i < theta.length; i++) {
        const h = 1e-5 * Math.max(1, Math.abs(theta[i]));
        const plus = { ...p, [k]: theta.map((v, j) => (j === i ? v + h : v)) };
        const minus = { ...p, [k]: theta.map((v, j) => (j === i ? v - h : v)) };
        fd.push((ref.lossOf(plus, x, fdOpts) - ref.lossOf(minus, x, fdOpts)) / (2 * h));
      }
      // float64 central differences are good to ~1e−9 here; the float32 bound dominates.
      const t = k === "b" ? tol.db : tol.dw;
      expectClose(
        got[k],
        fd,
        Array.from(t, (v, i) => v + 1e-7 * (1 + Math.abs(fd[i]))),
        `${backend} FD d${k}`,
      );
    }
    m.dispose();
  });

  it("directional derivative of the model's own loss matches its gradient", () => {
    // No reference at all: the model's loss at θ ± h·v against ⟨∇, v⟩ from the same model.
    const inputs = 7;
    const outputs = 3;
    const batch = 11;
    const rng = new ref.Rng(99);
    const m = Model.from({
      inputs,
      outputs,
      w: rng.floats(inputs * outputs, -0.8, 0.8),
      b: rng.floats(outputs, -0.5, 0.5),
      backend,
    });
    const x = batchX(rng, batch, inputs);
    const targets = targetsFor(rng, batch * outputs);
    const call = { reduction: "sum" as const, objective: { entropy: 1, crossEntropy: 0.5 }, targets };
    const w0 = m.w.slice();
    const b0 = m.b.slice();
    const r = m.gradients(x, call);
    const dw = Array.from(r.dw);
    const db = Array.from(r.db);
    const vw = Array.from({ length: w0.length }, () => rng.uniform(-1, 1));
    const vb = Array.from({ length: b0.length }, () => rng.uniform(-1, 1));
    let slope = 0;
    let mag = 0;
    for (const [v, g] of [
      [vw, dw],
      [vb, db],
    ] as const) {
      for (let i = 0; i < v.length; i++) {
        slope += v[i] * g[i];
        mag += Math.abs(v[i] * g[i]);
      }
    }
    const h = 1e-2;
    const lossAt = (s: number) => {
      const w = m.w;
      const b = m.b;
      for (let i = 0; i < w.length; i++) w[i] = w0[i] + s * h * vw[i];
      for (let i = 0; i < b.length; i++) b[i] = b0[i] + s * h * vb[i];
      return m.gradients(x, call).loss as number;
    };
    const lp = lossAt(1);
    const lm = lossAt(-1);
    const fd = (lp - lm) / (2 * h);
    // Truncation h²/6·|L'''| plus float32 noise of the two losses (≈ 8ε·|L|·√N each) over 2h.
    const noise = (2 * 8 * EPS32 * Math.sqrt(batch * outputs) * Math.max(Math.abs(lp), Math.abs(lm))) / (2 * h);
    expect(Math.abs(fd - slope), `fd ${fd} vs ⟨∇,v⟩ ${slope}`).toBeLessThanOrEqual(2e-3 * mag + noise);
    m.dispose();
  });

  it("dw and dg are the same memory and equal element for element", () => {
    const rng = new ref.Rng(5);
    const m = new Model({ inputs: 6, outputs: 4, seed: 3, backend });
    const x = batchX(rng, 9, 6);
    const r = m.gradients(x);
    expect(r.dg.length).toBe(r.dw.length);
    expect(r.dg.buffer).toBe(r.dw.buffer);
    expect(r.dg.byteOffset).toBe(r.dw.byteOffset);
    expect(Array.from(bits(r.dg))).toEqual(Array.from(bits(r.dw)));
    m.dispose();
  });

  it("{ entropy: 1 } with 'sum' is the seed's formula −(1/ln2)·z·D(1−D)·xᵀ summed over the batch", () => {
    const inputs = 5;
    const outputs = 3;
    const batch = 17;
    const rng = new ref.Rng(31);
    const m = Model.from({
      inputs,
      outputs,
      w: rng.floats(inputs * outputs, -1, 1),
      g: rng.floats(inputs * outputs, -0.3, 0.3),
      b: rng.floats(outputs, -1, 1),
      backend,
    });
    const x = batchX(rng, batch, inputs, 2);
    // The seed's formula written out directly, from the model's own z and D.
    const f = m.forward(x);
    const z = Array.from(f.z);
    const D = Array.from(f.d);
    const dw = new Float64Array(outputs * inputs);
    const db = new Float64Array(outputs);
    for (let n = 0; n < batch; n++)
      for (let o = 0; o < outputs; o++) {
        const k = n * outputs + o;
        const delta = (-1 / Math.LN2) * z[k] * D[k] * (1 - D[k]);
        db[o] += delta;
        for (let i = 0; i < inputs; i++) dw[o * inputs + i] += delta * x[n * inputs + i];
      }
    const r = m.gradients(x, { objective: { entropy: 1 }, reduction: "sum" });
    const p = paramsOf(m);
    const tol = tolerances(p, x, ref.evaluate(p, x, { reduction: "sum" }), { reduction: "sum" });
    // D(1−D) from a float32 D loses accuracy where D is near 1; allow for it: |Δ(D(1−D))| ≤ 2ε.
    const extraW = Array.from(tol.dw, (t, j) => {
      const o = Math.floor(j / inputs);
      let s = 0;
      for (let n = 0; n < batch; n++)
        s += (2 * EPS32 * Math.abs(z[n * outputs + o] * x[n * inputs + (j % inputs)])) / Math.LN2;
      return t + s;
    });
    const extraB = Array.from(tol.db, (t, o) => {
      let s = 0;
      for (let n = 0; n < batch; n++) s += (2 * EPS32 * Math.abs(z[n * outputs + o])) / Math.LN2;
      return t + s;
    });
    expectClose(Array.from(r.dw), dw, extraW, `${backend} seed formula dw`);
    expectClose(Array.from(r.dg), dw, extraW, `${backend} seed formula dg`);
    expectClose(Array.from(r.db), db, extraB, `${backend} seed formula db`);
    m.dispose();
  });

  it("an all-zero model does not move under the entropy objective; a seeded one does", () => {
    const rng = new ref.Rng(8);
    const x = batchX(rng, 10, 4);
    const zero = new Model({ inputs: 4, outputs: 3, init: "zeros", backend });
    expect(Array.from(zero.w).every((v) => v === 0)).toBe(true);
    const before = snapshot(zero);
    const opt = new SGD(zero, { lr: 0.5 });
    // 1 bit per unit at z = 0, 3 outputs (mean over the batch; 1/batch may be a float32).
    for (let k = 0; k < 5; k++) expect(Math.abs(opt.step(x).entropy - 3)).toBeLessThanOrEqual(8 * EPS32);
    const after = snapshot(zero);
    expect(Array.from(after.w)).toEqual(Array.from(before.w));
    expect(Array.from(after.g)).toEqual(Array.from(before.g));
    expect(Array.from(after.b)).toEqual(Array.from(before.b));

    const seeded = new Model({ inputs: 4, outputs: 3, backend });
    const w0 = Array.from(seeded.w);
    const opt2 = new SGD(seeded, { lr: 0.5 });
    const e0 = opt2.step(x).entropy;
    for (let k = 0; k < 4; k++) opt2.step(x);
    expect(Array.from(seeded.w)).not.toEqual(w0);
    expect(seeded.entropy(x)).toBeLessThan(e0);
    zero.dispose();
    seeded.dispose();
  });
});
