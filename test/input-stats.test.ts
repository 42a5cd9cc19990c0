// Input statistics on every backend: a model with statistics computes z = (W+G)·x̃ + b with
// x̃ = (x − mean)/std (float32 arithmetic), in every call, and its gradients are those of that
// layer (checked against the float64 reference on x̃ and by finite differences of the reference
// loss through the standardisation); setInputStats' floor and checks; merge(); the prior and the
// source entropy; persistence (old files load, new ones round-trip); fit({ standardize }).
import { beforeAll, describe, expect, it } from "vitest";
import { fit, init, Model, SGD } from "entrograd";
import {
  BACKENDS,
  batchX,
  bits,
  defined,
  expectClose,
  expectCloseNumber,
  expectCode,
  paramsOf,
  snapshot,
  targetsFor,
  tolerances,
} from "./helpers";
import * as ref from "./reference";

beforeAll(async () => {
  await init();
});

const I = 7,
  O = 4,
  B = 9;

/** Inputs far from 0 and of different scales: standardising matters. */
function inputs(rng: ref.Rng, batch: number): Float32Array {
  const x = batchX(rng, batch, I, 1);
  for (let n = 0; n < batch; n++) for (let i = 0; i < I; i++) x[n * I + i] = 3 * i + (i + 1) * x[n * I + i];
  return x;
}

/** x̃ exactly as documented: the subtraction rounded to float32, then the division. */
function standardized(x: Float32Array, mean: ArrayLike<number>, std: ArrayLike<number>): Float32Array {
  return x.map((v, k) => Math.fround(v - mean[k % I]) / std[k % I]);
}

function setup(backend: (typeof BACKENDS)[number], seed: number) {
  const rng = new ref.Rng(seed);
  const m = Model.from({
    inputs: I,
    outputs: O,
    backend,
    w: rng.floats(I * O, -0.7, 0.7),
    g: rng.floats(I * O, -0.2, 0.2),
    b: rng.floats(O, -0.5, 0.5),
  });
  const mean = Array.from({ length: I }, (_, i) => 3 * i + 0.1);
  const std = Array.from({ length: I }, (_, i) => (i === 2 ? 0.001 : 0.5 * (i + 1)));
  return { m, rng, mean, std };
}

describe.each(BACKENDS)("input statistics on %s", (backend) => {
  it("setInputStats floors the standard deviations and inputStats reads them back", () => {
    const { m, mean, std } = setup(backend, 1);
    expect(m.inputStats).toBeNull();
    m.setInputStats(mean, std, { minStd: 0.25 });
    const s = defined(m.inputStats, "inputStats");
    expect(Array.from(s.mean)).toEqual(Array.from(Float32Array.from(mean)));
    expect(Array.from(s.std)).toEqual(Array.from(Float32Array.from(std, (v) => Math.max(v, 0.25))));
    expect(s.minStd).toBe(0.25);
    // The default floor: 1 % of the root mean square of the standard deviations.
    m.setInputStats(mean, std);
    const rms = Math.sqrt(std.reduce((a, v) => a + v * v, 0) / I);
    expect(defined(m.inputStats, "inputStats").minStd).toBe(Math.fround(0.01 * rms));
    expect(defined(m.inputStats, "inputStats").std[2]).toBe(Math.fround(0.01 * rms));
    m.setInputStats(mean, new Array(I).fill(0));
    expect(defined(m.inputStats, "inputStats").minStd).toBe(1);
    m.setInputStats(null);
    expect(m.inputStats).toBeNull();
  });

  it("forward, entropy, gradients and step use x̃ = (x − mean)/std, against the float64 reference", () => {
    const { m, rng, mean, std } = setup(backend, 2);
    m.setInputStats(mean, std, { minStd: 0.2 });
    const st = defined(m.inputStats, "inputStats");
    const x = inputs(rng, B);
    const xs = standardized(x, st.mean, st.std);
    const targets = targetsFor(rng, B * O);
    const p = paramsOf(m);
    const opts = { objective: { crossEntropy: 0.6, entropy: 0.4 }, targets };
    const e = ref.evaluate(p, xs, opts);
    const t = tolerances(p, xs, e, opts);
    const f = m.forward(x);
    expectClose(f.z, e.z, t.z, "z");
    expectClose(f.d, e.d, t.d, "d");
    expectCloseNumber(m.entropy(x), ref.evaluate(p, xs).entropy, 1e-5, "entropy");
    const g = m.gradients(x, opts);
    expectCloseNumber(g.loss, e.loss, t.loss, "loss");
    expectClose(g.dw, e.dw, t.dw, "dw = δᵀ·x̃");
    expectClose(g.db, e.db, t.db, "db");
    // The gradient is the derivative of the loss through the standardisation: finite differences
    // of the reference loss of x ↦ (W+G)·(x − mean)/std + b, standardised in float64.
    const xs64 = Array.from(x, (v, k) => (v - st.mean[k % I]) / st.std[k % I]);
    for (const k of [0, 5, I * O - 1]) {
      const h = 1e-6;
      const plus = { ...p, w: Array.from(p.w) },
        minus = { ...p, w: Array.from(p.w) };
      plus.w[k] += h;
      minus.w[k] -= h;
      const fd = (ref.lossOf(plus, xs64, opts) - ref.lossOf(minus, xs64, opts)) / (2 * h);
      expectCloseNumber(g.dw[k], fd, 1e-4 * (Math.abs(fd) + 1e-2), `dW[${k}] by finite differences`);
    }
    // One SGD step moves W by −lr·δᵀ·x̃, as the reference's step on x̃.
    const twin = new ref.ReferenceSGD(p, { lr: 0.1 });
    new SGD(m, { lr: 0.1 }).step(x, opts);
    twin.step(xs, opts);
    expectClose(m.w, twin.p.w, 1e-6, "w after a step");
    expectClose(m.b, twin.p.b, 1e-6, "b after a step");
  });

  it("the staging view is read, not changed; without statistics the model is as before", () => {
    const { m, rng, mean, std } = setup(backend, 3);
    const x = inputs(rng, B);
    const plain = m.forward(x).z.slice();
    m.setInputStats(mean, std);
    const with1 = m.forward(x).z.slice();
    const staged = m.input(B);
    staged.set(x);
    expect(bits(m.forward(staged).z)).toEqual(bits(with1));
    expect(bits(staged)).toEqual(bits(x)); // standardised elsewhere, not in place
    expect(bits(m.forward(staged).z)).toEqual(bits(with1)); // so a second call sees the same
    // A larger batch grows the scratch too.
    const big = inputs(rng, 5 * B);
    const zBig = m.forward(big).z.slice();
    const st = defined(m.inputStats, "inputStats");
    const e = ref.evaluate(paramsOf(m), standardized(big, st.mean, st.std));
    expectClose(zBig, e.z, tolerances(paramsOf(m), standardized(big, st.mean, st.std), e).z, "z of a larger batch");
    m.setInputStats(null);
    expect(bits(m.forward(x).z)).toEqual(bits(plain));
  });

  it("bad statistics are refused and change nothing", () => {
    const { m, mean, std } = setup(backend, 4);
    m.setInputStats(mean, std, { minStd: 0.3 });
    const before = m.inputStats;
    expectCode(() => m.setInputStats(mean.slice(1), std), "SHAPE", "short mean");
    expectCode(() => m.setInputStats(mean, [...std.slice(1), Number.NaN]), "NON_FINITE", "NaN std");
    expectCode(() => m.setInputStats(mean, [...std.slice(1), -1]), "OPTION", "negative std");
    expectCode(() => m.setInputStats(mean, std, { minStd: 0 }), "OPTION", "minStd 0");
    expectCode(() => m.setInputStats(mean, std, { minStd: 1e-50 }), "OPTION", "minStd below float32");
    expectCode(() => m.setInputStats(mean, std, { floor: 1 } as never), "OPTION", "unknown option");
    expectCode(() => m.setInputStats(null, std), "OPTION", "null with std");
    expectCode(() => m.setPrior([0.5, 0.5, 2, 0]), "OPTION", "prior above 1");
    expectCode(() => m.setPrior([0.5]), "SHAPE", "short prior");
    expectCode(() => m.setSourceEntropy(-1), "OPTION", "negative source entropy");
    expect(m.inputStats).toEqual(before);
    m.dispose();
    expectCode(() => m.setInputStats(null), "DISPOSED");
    expectCode(() => m.inputStats, "DISPOSED");
  });

  it("merge(): W := W + G, G := 0, every output bit for bit the same", () => {
    const { m, rng, mean, std } = setup(backend, 5);
    m.setInputStats(mean, std);
    const x = inputs(rng, B);
    const z = bits(m.forward(x).z);
    const sum = Float32Array.from(m.w, (v, k) => v + m.g[k]);
    m.merge();
    expect(bits(m.w)).toEqual(bits(sum));
    expect(Array.from(m.g).every((v) => v === 0)).toBe(true);
    expect(bits(m.forward(x).z)).toEqual(z);
  });

  it("recordSource: the median per-sample entropy, and the prior from the targets' means", () => {
    const { m, rng } = setup(backend, 6);
    const x = inputs(rng, 11);
    const targets = new Float32Array(11 * O).map((_, k) => (k % O === Math.floor(k / O) % 3 ? 1 : 0));
    m.recordSource(x, { targets });
    const e = ref.evaluate(paramsOf(m), x, { reduction: "none" });
    const perSample = Array.from({ length: 11 }, (_, n) =>
      e.unitEntropy.slice(n * O, n * O + O).reduce((a, v) => a + v, 0),
    );
    perSample.sort((a, b) => a - b);
    expectCloseNumber(defined(m.sourceEntropy, "sourceEntropy"), perSample[5], 1e-5, "median entropy");
    const prior = Array.from(
      { length: O },
      (_, o) => targets.filter((_, k) => k % O === o).reduce((a, v) => a + v, 0) / 11,
    );
    expectClose(defined(m.prior, "prior"), prior, 1e-7, "prior");
    expectCode(() => m.recordSource(x, { targets: targets.subarray(1) }), "SHAPE");
  });

  it("save/load: statistics, prior and source entropy round-trip; clone keeps them", () => {
    const { m, rng, mean, std } = setup(backend, 7);
    const plain = m.save();
    m.setInputStats(mean, std, { minStd: 0.3 });
    m.setPrior([0.1, 0.2, 0.3, 0.4]);
    m.setSourceEntropy(0.123456789);
    const x = inputs(rng, B);
    const z = bits(m.forward(x).z);
    for (const twin of [Model.load(m.save(), { backend }), m.clone()]) {
      expect(twin.inputStats).toEqual(m.inputStats);
      expect(twin.prior).toEqual(m.prior);
      expect(twin.sourceEntropy).toBe(0.123456789);
      expect(bits(twin.forward(x).z)).toEqual(z);
      expect(snapshot(twin)).toEqual(snapshot(m));
      twin.dispose();
    }
    // A model without them writes the version-1 file it always wrote, which loads without them.
    const old = Model.load(plain, { backend });
    expect(old.inputStats).toBeNull();
    expect(old.prior).toBeNull();
    expect(old.sourceEntropy).toBeNull();
    expect(new TextDecoder().decode(plain)).toContain('"version":"1"');
    expect(new TextDecoder().decode(m.save())).toContain('"version":"2"');
  });

  it("fit({ standardize }) sets the columns' mean and standard deviation, and records prior and source entropy", async () => {
    const { rng } = setup(backend, 8);
    const m = new Model({ inputs: I, outputs: O, seed: 3, backend });
    const x = inputs(rng, 40);
    for (let n = 0; n < 40; n++) x[n * I + 4] = 2.5; // a constant column: floored
    const targets = new Float32Array(40 * O).map((_, k) => (k % O === Math.floor(k / O) % O ? 1 : 0));
    await fit(m, new SGD(m, { lr: 0.05 }), x, {
      epochs: 2,
      standardize: true,
      minStd: 0.5,
      targets,
      objective: { crossEntropy: 1 },
    });
    const st = defined(m.inputStats, "inputStats");
    for (let i = 0; i < I; i++) {
      const col = Array.from({ length: 40 }, (_, n) => x[n * I + i]);
      const mu = col.reduce((a, v) => a + v, 0) / 40;
      const sd = Math.sqrt(col.reduce((a, v) => a + (v - mu) ** 2, 0) / 40);
      expectCloseNumber(st.mean[i], mu, 1e-6 * Math.abs(mu) + 1e-7, `mean[${i}]`);
      expectCloseNumber(st.std[i], Math.max(sd, 0.5), 1e-6 * sd + 1e-7, `std[${i}]`);
    }
    expect(st.std[4]).toBe(0.5);
    expectClose(defined(m.prior, "prior"), [0.25, 0.25, 0.25, 0.25], 1e-7, "prior");
    expect(m.sourceEntropy).toBeGreaterThan(0);
    // Without standardize, fit leaves the statistics as they are.
    const before = m.inputStats;
    await fit(m, new SGD(m, { lr: 0.05 }), x, { epochs: 1 });
    expect(m.inputStats).toEqual(before);
    await expect(fit(m, new SGD(m, { lr: 0.05 }), x, { minStd: 1 })).rejects.toMatchObject({ code: "OPTION" });
  });
});
