// Semi-supervised rows on every backend (entropy regularisation, Grandvalet & Bengio 2004): with
// labelledRows = L the first L rows take the cross-entropy term alone (against L × outputs
// targets), the others the entropy term alone, the reduction over the whole batch. Against the
// float64 reference (each part evaluated as the plain objective it is), its finite differences,
// SGD steps, fit() with a labelled mask; the checks.
import { beforeAll, describe, expect, it } from "vitest";
import { fit, init, Model, SGD } from "entrograd";
import {
  BACKENDS,
  batchX,
  defined,
  expectClose,
  expectCloseNumber,
  expectCode,
  paramsOf,
  snapshot,
  targetsFor,
} from "./helpers";
import * as ref from "./reference";

beforeAll(async () => {
  await init();
});

const I = 6,
  O = 3,
  B = 10;
const A_C = 1.5,
  A_E = 0.4;

/** The semi-supervised loss and gradients in float64: the labelled rows' and the unlabelled
 * rows' objectives summed (each with the sum reduction), scaled by 1/B ("mean") or 1 ("sum"). */
function semiRef(p: ref.Params, x: ArrayLike<number>, targets: ArrayLike<number>, L: number, mean: boolean) {
  const scale = mean ? 1 / B : 1;
  const dw = new Float64Array(O * I),
    db = new Float64Array(O);
  let loss = 0,
    entropy = 0;
  const parts: [number, number, ref.EvalOptions][] = [
    [0, L, { objective: { crossEntropy: A_C }, targets, reduction: "sum" }],
    [L, B, { objective: { entropy: A_E }, reduction: "sum" }],
  ];
  for (const [from, to, opts] of parts) {
    if (to === from) continue;
    const e = ref.evaluate(p, Array.from(x).slice(from * I, to * I), opts);
    loss += scale * e.loss;
    entropy += scale * e.entropy;
    for (let k = 0; k < dw.length; k++) dw[k] += scale * e.dw[k];
    for (let o = 0; o < O; o++) db[o] += scale * e.db[o];
  }
  return { loss, entropy, dw, db };
}

function setup(backend: (typeof BACKENDS)[number], seed: number) {
  const rng = new ref.Rng(seed);
  const m = Model.from({
    inputs: I,
    outputs: O,
    backend,
    w: rng.floats(I * O, -0.9, 0.9),
    g: rng.floats(I * O, -0.2, 0.2),
    b: rng.floats(O, -0.5, 0.5),
  });
  return { m, rng, x: batchX(rng, B, I, 1.5), y: targetsFor(rng, B * O) };
}

describe.each(BACKENDS)("semi-supervised rows on %s", (backend) => {
  it("loss, entropy and gradients match the float64 reference and its finite differences", () => {
    const { m, x, y } = setup(backend, 1);
    const p = paramsOf(m);
    for (const L of [0, 1, 4, B])
      for (const reduction of ["mean", "sum"] as const) {
        const what = `L = ${L}, ${reduction}`;
        const targets = y.subarray(0, L * O);
        const r = m.gradients(x, {
          objective: { crossEntropy: A_C, entropy: A_E },
          targets,
          labelledRows: L,
          reduction,
        });
        const e = semiRef(p, x, targets, L, reduction === "mean");
        expectCloseNumber(r.loss, e.loss, 1e-5 * (Math.abs(e.loss) + 1), `${what}: loss`);
        expectCloseNumber(r.entropy, e.entropy, 1e-5 * (e.entropy + 1), `${what}: entropy over the whole batch`);
        const scaleOf = (v: ArrayLike<number>) => Math.max(...Array.from(v, Math.abs)) + 1e-3;
        expectClose(r.dw, e.dw, 2e-5 * scaleOf(e.dw), `${what}: dw`);
        expectClose(r.db, e.db, 2e-5 * scaleOf(e.db), `${what}: db`);
        // The reference's gradient is the derivative of its loss: finite differences in W.
        for (const k of [0, 8, I * O - 1]) {
          const h = 1e-6;
          const plus = { ...p, w: Array.from(p.w) },
            minus = { ...p, w: Array.from(p.w) };
          plus.w[k] += h;
          minus.w[k] -= h;
          const fd =
            (semiRef(plus, x, targets, L, reduction === "mean").loss -
              semiRef(minus, x, targets, L, reduction === "mean").loss) /
            (2 * h);
          expectCloseNumber(e.dw[k], fd, 1e-6 * (Math.abs(fd) + 1), `${what}: oracle dW[${k}]`);
          expectCloseNumber(r.dw[k], fd, 3e-5 * (Math.abs(fd) + 1e-2), `${what}: package dW[${k}]`);
        }
      }
    // With every row labelled it is the plain cross-entropy objective; with none, the entropy.
    const all = m.gradients(x, { objective: { crossEntropy: A_C, entropy: A_E }, targets: y, labelledRows: B });
    const ce = m.gradients(x, { objective: { crossEntropy: A_C }, targets: y });
    expectCloseNumber(all.loss, ce.loss, 1e-6 * Math.abs(ce.loss), "all labelled");
    const none = m.gradients(x, {
      objective: { crossEntropy: A_C, entropy: A_E },
      targets: y.subarray(0, 0),
      labelledRows: 0,
    });
    expectCloseNumber(none.loss, A_E * m.entropy(x), 1e-6, "none labelled");
  });

  it("SGD steps follow the reference", () => {
    const { m, x, y } = setup(backend, 2);
    const L = 4,
      targets = y.subarray(0, L * O);
    const twin = { ...paramsOf(m), w: Float64Array.from(m.w), b: Float64Array.from(m.b) };
    const opt = new SGD(m, { lr: 0.2, groups: { g: { frozen: true } } });
    for (let s = 0; s < 5; s++) {
      opt.step(x, { objective: { crossEntropy: A_C, entropy: A_E }, targets, labelledRows: L });
      const e = semiRef(twin, x, targets, L, true);
      for (let k = 0; k < twin.w.length; k++) twin.w[k] -= 0.2 * e.dw[k];
      for (let o = 0; o < O; o++) twin.b[o] -= 0.2 * e.db[o];
      expectClose(m.w, twin.w, 1e-5, `step ${s}: w`);
      expectClose(m.b, twin.b, 1e-5, `step ${s}: b`);
    }
  });

  it("fit({ labelled }): the labelled rows' cross-entropy and the others' entropy, the prior from the labelled rows", async () => {
    const rng = new ref.Rng(3);
    const n = 40;
    const x = batchX(rng, n, I, 1.5);
    const y = new Float32Array(n * O).map((_, k) => (k % O === Math.floor(k / O) % O ? 1 : 0));
    const labelled = Array.from({ length: n }, (_, r) => r % 4 === 0);
    // The unlabelled rows' targets are never read: NaN there is fine.
    for (let r = 0; r < n; r++) if (!labelled[r]) y.fill(Number.NaN, r * O, r * O + O);
    const make = () => Model.from({ inputs: I, outputs: O, backend, w: rng.floats(I * O, -0.5, 0.5) });
    const m = make();
    const twin = m.clone();
    const objective = { crossEntropy: A_C, entropy: A_E };
    await fit(m, new SGD(m, { lr: 0.1 }), x, { epochs: 2, batchSize: 8, seed: 5, targets: y, labelled, objective });
    // The same steps by hand: each batch of fit's order, its labelled rows first.
    const order = fitOrder(n, 2, 5);
    const opt = new SGD(twin, { lr: 0.1 });
    for (const batch of order) {
      const rows = [...batch.filter((r) => labelled[r]), ...batch.filter((r) => !labelled[r])];
      const L = batch.filter((r) => labelled[r]).length;
      const xb = new Float32Array(rows.length * I);
      const yb = new Float32Array(L * O);
      for (const [k, r] of rows.entries()) xb.set(x.subarray(r * I, r * I + I), k * I);
      for (const [k, r] of rows.slice(0, L).entries()) yb.set(y.subarray(r * O, r * O + O), k * O);
      opt.step(xb, { objective, targets: yb, labelledRows: L });
    }
    expect(Array.from(m.w)).toEqual(Array.from(twin.w));
    expect(Array.from(m.b)).toEqual(Array.from(twin.b));
    expectClose(defined(m.prior, "prior"), [4 / 10, 3 / 10, 3 / 10], 1e-7, "prior of the labelled rows");
    await expect(
      fit(m, new SGD(m, { lr: 0.1 }), x, { targets: y, labelled: labelled.slice(1), objective }),
    ).rejects.toMatchObject({ code: "SHAPE" });
    await expect(
      fit(m, new SGD(m, { lr: 0.1 }), x, { targets: y, labelled: labelled.map(() => 2), objective }),
    ).rejects.toMatchObject({ code: "OPTION" });
    await expect(fit(m, new SGD(m, { lr: 0.1 }), x, { labelled, objective: { entropy: 1 } })).rejects.toMatchObject({
      code: "OPTION",
    });
  });

  it("options are checked and a refused call changes nothing", () => {
    const { m, x, y } = setup(backend, 4);
    const opt = new SGD(m, { lr: 0.1 });
    const s0 = snapshot(m);
    const objective = { crossEntropy: A_C, entropy: A_E };
    expectCode(() => opt.step(x, { objective, targets: y, labelledRows: 3 }), "SHAPE", "targets of every row");
    expectCode(() => opt.step(x, { objective, targets: y, labelledRows: B + 1 }), "SHAPE", "more rows than the batch");
    expectCode(() => opt.step(x, { objective, targets: y.subarray(0, 3), labelledRows: 1.5 }), "OPTION", "not whole");
    expectCode(() => opt.step(x, { objective, targets: y.subarray(0, 3), labelledRows: -1 }), "OPTION", "negative");
    const nan = y.slice(0, 3 * O);
    nan[2] = Number.NaN;
    expectCode(() => opt.step(x, { objective, targets: nan, labelledRows: 3 }), "NON_FINITE", "NaN target");
    expect(snapshot(m)).toEqual(s0);
  });
});

/** fit's batches: a Fisher–Yates shuffle per epoch from splitmix32(seed) (ts/rng.ts). */
function fitOrder(n: number, epochs: number, seed: number): number[][] {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
    t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
    return ((t ^ (t >>> 15)) >>> 0) / 4294967296;
  };
  const out: number[][] = [];
  for (let e = 0; e < epochs; e++) {
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    for (let at = 0; at < n; at += 8) out.push(order.slice(at, at + 8));
  }
  return out;
}
