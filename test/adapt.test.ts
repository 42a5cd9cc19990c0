// Test-time adaptation on every backend against the float64 oracle (reference-adapt.ts): the
// filter, EATA weights, the diversity term (its gradient also by finite differences of the
// oracle's loss), the metrics; SGD steps through Adapter; reset and automatic reset; errors
// and check-before-write.
import { beforeAll, describe, expect, it } from "vitest";
import { Adam, Adapter, AdaptStepResult, init, Model, SGD, type AdaptOptions } from "entrograd";
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
} from "./helpers";
import * as ref from "./reference";
import { evaluateAdapted, ReferenceAdapt, ReferenceAdaptSGD, thresholdBetween, type AdaptRef } from "./reference-adapt";

beforeAll(async () => {
  await init();
});

const INPUTS = 9;
const OUTPUTS = 5;
const BATCH = 24;
/** The models' prior (their training label frequency). */
const PRIOR = [0.1, 0.3, 0.2, 0.25, 0.15];
/** A running marginal before a batch. */
const MARGINAL = Float32Array.of(0.4, 0.2, 0.05, 0.3, 0.6);

/** The oracle's options for what the package is given: the model's prior made explicit, and
 * for an Adapter its running marginal's default momentum (0.9). */
function forRef(adapt: AdaptRef, adapter = false): AdaptRef {
  if (!adapt.diversity) return adapt;
  return { prior: PRIOR, ...(adapter ? { marginalMomentum: 0.9 } : {}), ...adapt };
}

function setup(backend: (typeof BACKENDS)[number], seed: number) {
  const rng = new ref.Rng(seed);
  const m = Model.from({
    inputs: INPUTS,
    outputs: OUTPUTS,
    backend,
    w: rng.floats(INPUTS * OUTPUTS, -0.8, 0.8),
    g: rng.floats(INPUTS * OUTPUTS, -0.2, 0.2),
    b: rng.floats(OUTPUTS, -1, 1),
  });
  m.setPrior(PRIOR);
  const x = batchX(rng, BATCH, INPUTS, 1.5);
  const targets = targetsFor(rng, BATCH * OUTPUTS);
  const e0 = thresholdBetween(evaluateAdapted(paramsOf(m), x, { adapt: {} }).sampleEntropy);
  return { m, x, targets, e0 };
}

/** The option sets: TENT, filter, EATA, diversity, all of them. */
function cases(e0: number): { name: string; adapt: AdaptRef }[] {
  return [
    { name: "metrics only", adapt: {} },
    { name: "filter", adapt: { maxEntropy: e0 } },
    { name: "EATA", adapt: { maxEntropy: e0, weighting: "eata" } },
    { name: "diversity (the model's prior, this batch)", adapt: { diversity: 0.8 } },
    { name: "diversity (a running marginal)", adapt: { diversity: 0.8, marginal: MARGINAL, marginalMomentum: 0.6 } },
    { name: "EATA + diversity (prior 0.3)", adapt: { maxEntropy: e0, weighting: "eata", diversity: 0.5, prior: 0.3 } },
  ];
}

describe.each(BACKENDS)("adapt on %s", (backend) => {
  it("gradients, loss and metrics match the float64 oracle", () => {
    const { m, x, targets, e0 } = setup(backend, 11);
    const p = paramsOf(m);
    for (const c of cases(e0))
      for (const reduction of ["mean", "sum"] as const)
        for (const objective of [undefined, { entropy: 0.7, crossEntropy: 0.3 }]) {
          const what = `${c.name}, ${reduction}, ${objective ? "mixed" : "entropy"}`;
          const opts = {
            reduction,
            objective,
            targets: objective ? targets : undefined,
            adapt: c.adapt as AdaptOptions,
          };
          const r = m.gradients(x, opts);
          const e = evaluateAdapted(p, x, { ...opts, adapt: forRef(opts.adapt) });
          const a = r.adapt as AdaptStepResult;
          expect(a, what).toBeInstanceOf(AdaptStepResult);
          expect(a.kept, `${what}: kept`).toBe(e.kept);
          expect(a.batch).toBe(BATCH);
          expectCloseNumber(a.filtered, (BATCH - e.kept) / BATCH, 1e-12, `${what}: filtered`);
          if (c.adapt.maxEntropy !== undefined)
            expect(e.kept > 0 && e.kept < BATCH, `${what}: the filter splits`).toBe(true);
          expectClose(
            a.weights,
            e.weights,
            Array.from(e.weights, (v) => 1e-5 * v + 1e-30),
            `${what}: weights`,
          );
          expectClose(a.meanPrediction, e.meanPrediction, 1e-5, `${what}: mean prediction`);
          expectClose(a.positive, e.positive, 1e-6, `${what}: positive`);
          expectCloseNumber(a.meanEntropy, e.meanEntropy, 1e-5 * OUTPUTS, `${what}: mean entropy`);
          expectCloseNumber(r.loss, e.loss, 1e-5 * (Math.abs(e.loss) + 1), `${what}: loss`);
          expect(a.loss).toBe(r.loss);
          expectCloseNumber(a.diversity, e.diversity, 1e-5 * (Math.abs(e.diversity) + 1e-3), `${what}: diversity`);
          expectClose(
            r.dw,
            e.dw,
            Array.from(e.dwMag, (v) => 2e-5 * v + 1e-9),
            `${what}: dw`,
          );
          expectClose(
            r.dg,
            e.dw,
            Array.from(e.dwMag, (v) => 2e-5 * v + 1e-9),
            `${what}: dg`,
          );
          expectClose(
            r.db,
            e.db,
            Array.from(e.dbMag, (v) => 2e-5 * v + 1e-9),
            `${what}: db`,
          );
        }
  });

  it("the oracle's gradient is the finite difference of its loss (weights held, as EATA)", () => {
    const { m, x, e0 } = setup(backend, 12);
    const p = paramsOf(m);
    for (const c of cases(e0)) {
      const opts = { adapt: c.adapt };
      const e = evaluateAdapted(p, x, { ...opts, adapt: forRef(opts.adapt) });
      const fixed = { weights: e.weights, kept: e.kept };
      const r = m.gradients(x, { adapt: c.adapt as AdaptOptions });
      const step = 1e-6;
      for (const k of [0, 7, 22, INPUTS * OUTPUTS - 1]) {
        const plus = { ...p, g: Array.from(p.g) },
          minus = { ...p, g: Array.from(p.g) };
        plus.g[k] += step;
        minus.g[k] -= step;
        const fd =
          (evaluateAdapted(plus, x, { ...opts, adapt: forRef(opts.adapt) }, fixed).loss -
            evaluateAdapted(minus, x, { ...opts, adapt: forRef(opts.adapt) }, fixed).loss) /
          (2 * step);
        expectCloseNumber(e.dw[k], fd, 1e-6 * (e.dwMag[k] + 1), `${c.name}: oracle dG[${k}]`);
        expectCloseNumber(r.dg[k], fd, 3e-5 * (e.dwMag[k] + 1e-3), `${c.name}: package dG[${k}]`);
      }
      for (let o = 0; o < OUTPUTS; o++) {
        const plus = { ...p, b: Array.from(p.b) },
          minus = { ...p, b: Array.from(p.b) };
        plus.b[o] += step;
        minus.b[o] -= step;
        const fd =
          (evaluateAdapted(plus, x, { ...opts, adapt: forRef(opts.adapt) }, fixed).loss -
            evaluateAdapted(minus, x, { ...opts, adapt: forRef(opts.adapt) }, fixed).loss) /
          (2 * step);
        expectCloseNumber(r.db[o], fd, 3e-5 * (e.dbMag[o] + 1e-3), `${c.name}: package db[${o}]`);
      }
    }
  });

  it("Adapter + SGD (w and b frozen, anchored g with momentum) follows the oracle over steps", () => {
    const { m, e0 } = setup(backend, 13);
    const rng = new ref.Rng(99);
    const batches = Array.from({ length: 3 }, () => batchX(rng, BATCH, INPUTS, 1.5));
    const rules = { g: { lr: 0.2, momentum: 0.9, weightDecay: 0.05 }, b: { lr: 0.2, frozen: true } };
    const opt = new SGD(m, { lr: 0.2, groups: { w: { frozen: true }, g: rules.g, b: { frozen: true } } });
    const adapt = { maxEntropy: e0 + 0.5, weighting: "eata" as const, diversity: 0.6 };
    const tta = new Adapter(m, opt, adapt);
    const twin = new ReferenceAdaptSGD(paramsOf(m), rules);
    const w0 = bits(m.w),
      b0 = bits(m.b);
    let ema = NaN;
    for (let s = 0; s < 8; s++) {
      const x = batches[s % 3];
      const r = tta.step(x);
      const e = twin.step(x, { adapt: forRef(adapt, true) });
      expect(r.kept, `step ${s}: kept`).toBe(e.kept);
      expectCloseNumber(r.loss, e.loss, 1e-4 * (Math.abs(e.loss) + 1), `step ${s}: loss`);
      expectCloseNumber(r.meanEntropy, e.meanEntropy, 1e-4, `step ${s}: mean entropy`);
      const scaleG = twin.p.g.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      expectClose(m.g, twin.p.g, 3e-5 * scaleG + 1e-7, `step ${s}: g`);
      ema = Number.isNaN(ema) ? r.meanEntropy : 0.9 * ema + 0.1 * r.meanEntropy;
      expectCloseNumber(tta.ema, ema, 1e-12, `step ${s}: ema`);
      expect(r.reset).toBe(false);
    }
    expect(bits(m.w)).toEqual(w0);
    expect(bits(m.b)).toEqual(b0);
    expect(tta.steps).toBe(8);
  });

  // Adam and clipping through Adapter, against the float64 formulas (not the package against
  // itself): w frozen, g adapted (Adam with decoupled decay, or SGD with momentum), b frozen or
  // not, clipping on with a threshold below the gradients' norm so that it acts.
  for (const [label, kind, bFrozen] of [
    ["Adam, clipped, b frozen", "adam", true],
    ["Adam, clipped, b adapted", "adam", false],
    ["SGD with momentum, clipped", "sgd", false],
  ] as const)
    it(`Adapter + ${label} follows the oracle over steps`, () => {
      const { m, e0 } = setup(backend, 21);
      const rng = new ref.Rng(98);
      const batches = Array.from({ length: 3 }, () => batchX(rng, BATCH, INPUTS, 1.5));
      const adapt = { maxEntropy: e0 + 0.5, weighting: "eata" as const, diversity: 0.4 };
      // The first step's gradient norm: clip at 40% of it.
      const first = evaluateAdapted(paramsOf(m), batches[0], { adapt: forRef(adapt) });
      let sq = 0;
      for (const v of first.dw) sq += v * v;
      if (!bFrozen) for (const v of first.db) sq += v * v;
      const maxGradNorm = 0.4 * Math.sqrt(sq);
      const g = kind === "adam" ? { lr: 0.02, weightDecay: 0.05 } : { lr: 0.2, momentum: 0.9, weightDecay: 0.05 };
      const b = { lr: 0.05, frozen: bFrozen };
      const groups = { w: { frozen: true }, g, b };
      const opt =
        kind === "adam"
          ? new Adam(m, { lr: 0.01, maxGradNorm, groups })
          : new SGD(m, { lr: 0.01, maxGradNorm, groups });
      const tta = new Adapter(m, opt, adapt);
      const twin = new ReferenceAdapt(paramsOf(m), kind, { g, b }, maxGradNorm);
      const w0 = bits(m.w);
      let clipped = 0;
      for (let s = 0; s < 8; s++) {
        const x = batches[s % 3];
        const r = tta.step(x);
        const e = twin.step(x, { adapt: forRef(adapt, true) });
        if (e.coef < 1) clipped++;
        expect(r.kept, `step ${s}: kept`).toBe(e.kept);
        expectCloseNumber(r.loss, e.loss, 1e-4 * (Math.abs(e.loss) + 1), `step ${s}: loss`);
        const scaleG = twin.p.g.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        expectClose(m.g, twin.p.g, 1e-4 * scaleG + 1e-6, `step ${s}: g`);
        const scaleB = twin.p.b.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        expectClose(m.b, twin.p.b, 1e-4 * scaleB + 1e-6, `step ${s}: b`);
      }
      expect(clipped, "clipping acted").toBeGreaterThan(0);
      expect(bits(m.w)).toEqual(w0);
      m.dispose();
    });

  // Boundaries that planted bugs survived (mutation testing): the filter keeps Hₙ ≤ E0, so a
  // sample exactly at maxEntropy is kept; the reset fires when ema < resetBelow, so a moving
  // average exactly at resetBelow does not reset. At z = 0 a unit's entropy is exactly 1 bit on
  // every backend, which makes the sample entropy exactly `outputs`.
  it("a sample whose entropy is exactly maxEntropy is kept (the filter is Hₙ ≤ E0)", () => {
    const m = Model.from({ inputs: 2, outputs: 3, w: [1, -0.5, 0.25, 2, -1, 0.75], backend });
    const x = Float32Array.of(0, 0, 1, 2, -1.5, 0.5, 0.25, -2); // sample 0: z = 0, H₀ = 3 bits
    const all = m.gradients(x, { adapt: {} }).adapt as AdaptStepResult;
    expect(all.weights[0]).toBe(1);
    const at = m.gradients(x, { adapt: { maxEntropy: 3 } }).adapt as AdaptStepResult;
    expect(at.kept, "kept at E0 = H₀ = 3").toBe(4);
    const below = m.gradients(x, { adapt: { maxEntropy: Math.fround(3 - 2 ** -21) } }).adapt as AdaptStepResult;
    expect(below.kept, "just below H₀").toBe(3);
    expect(below.weights[0]).toBe(0);
    m.dispose();
  });

  it("a moving average exactly at resetBelow does not reset (the reset is ema < resetBelow)", () => {
    const x = new Float32Array(4 * 2); // z = 0 for every unit: the mean entropy is exactly 3 bits
    const run = (resetBelow: number) => {
      const m = Model.from({ inputs: 2, outputs: 3, w: [1, -0.5, 0.25, 2, -1, 0.75], backend });
      const tta = new Adapter(m, new SGD(m, { lr: 0.1, groups: { w: { frozen: true } } }), { resetBelow });
      const r = tta.step(x);
      expect(r.meanEntropy).toBe(3);
      expect(tta.ema === 3 || Number.isNaN(tta.ema)).toBe(true);
      m.dispose();
      return r.reset;
    };
    expect(run(3), "ema = resetBelow = 3").toBe(false);
    expect(run(3 + 2 ** -20), "ema just below resetBelow").toBe(true);
  });

  it("reset(): G and b as when the adapter was made, optimizer state and moving average cleared", () => {
    const { m, x } = setup(backend, 14);
    const w0 = bits(m.w),
      g0 = bits(m.g),
      b0 = bits(m.b);
    expect(Array.from(m.g).some((v) => v !== 0)).toBe(true); // G is part of the model: kept, not zeroed
    const opt = new SGD(m, { lr: 0.3, momentum: 0.9, groups: { w: { frozen: true } } });
    const tta = new Adapter(m, opt, { diversity: 0.2 });
    for (let s = 0; s < 3; s++) tta.step(x);
    expect(bits(m.b)).not.toEqual(b0);
    expect(opt.stateDict().state.g.momentumBuffer).not.toBeNull();
    tta.reset();
    expect(bits(m.g)).toEqual(g0);
    expect(bits(m.b)).toEqual(b0);
    expect(bits(m.w)).toEqual(w0);
    expect(opt.stateDict().state.g.momentumBuffer).toBeNull();
    expect(Number.isNaN(tta.ema)).toBe(true);
    expect(tta.resets).toBe(1);
    // After the reset, the next step is the first step from the source model again.
    const fresh = Model.from({ inputs: INPUTS, outputs: OUTPUTS, backend, w: m.w, g: m.g, b: m.b });
    fresh.setPrior(PRIOR);
    const freshOpt = new SGD(fresh, { lr: 0.3, momentum: 0.9, groups: { w: { frozen: true } } });
    const a = tta.step(x);
    const b = new Adapter(fresh, freshOpt, { diversity: 0.2 }).step(x);
    expect(a.loss).toBe(b.loss);
    expect(bits(m.g)).toEqual(bits(fresh.g));
  });

  it("with Adam and clipping: reset clears Adam's state, and the next step is a first step again", () => {
    const { m, x, e0 } = setup(backend, 20);
    const make = (model: InstanceType<typeof Model>) =>
      new Adam(model, { lr: 0.02, maxGradNorm: 0.5, groups: { w: { frozen: true }, b: { frozen: true } } });
    const opt = make(m);
    const options = { maxEntropy: e0, weighting: "eata" as const, diversity: 0.3 };
    const g0 = bits(m.g);
    const tta = new Adapter(m, opt, options);
    for (let s = 0; s < 4; s++) tta.step(x);
    expect(opt.stateDict().steps).toBe(4);
    expect(bits(m.g)).not.toEqual(g0);
    tta.reset();
    expect(opt.stateDict().steps).toBe(0);
    expect(bits(m.g)).toEqual(g0);
    const fresh = Model.from({ inputs: INPUTS, outputs: OUTPUTS, backend, w: m.w, g: m.g, b: m.b });
    fresh.setPrior(PRIOR);
    const a = tta.step(x);
    const b = new Adapter(fresh, make(fresh), options).step(x);
    expect(a.loss).toBe(b.loss);
    expect(bits(m.g)).toEqual(bits(fresh.g));
  });

  it("automatic reset when the moving average of the entropy falls below resetBelow", () => {
    const { m, x } = setup(backend, 15);
    const opt = new SGD(m, { lr: 2, groups: { w: { frozen: true }, b: { frozen: true } } });
    const start = m.entropy(x);
    const g0 = bits(m.g);
    const tta = new Adapter(m, opt, { resetBelow: 0.6 * start, emaMomentum: 0.5 });
    const seen: boolean[] = [];
    for (let s = 0; s < 40; s++) {
      const r = tta.step(x);
      seen.push(r.reset);
      if (r.reset) {
        expect(bits(m.g), `step ${s}: G as at the start after the reset`).toEqual(g0);
        expect(Number.isNaN(tta.ema)).toBe(true);
      } else expect(tta.ema).toBeGreaterThanOrEqual(0.6 * start);
    }
    // Plain entropy minimisation with a large step drives the entropy down, so it resets, and
    // resets again after climbing back down from the source model.
    expect(tta.resets).toBeGreaterThanOrEqual(2);
    expect(seen.filter(Boolean).length).toBe(tta.resets);
    // Without resetBelow it never resets.
    const free = new Adapter(m, opt);
    for (let s = 0; s < 20; s++) expect(free.step(x).reset).toBe(false);
  });

  it("the diversity term holds the mean predictions near the prior while entropy minimisation collapses", () => {
    const run = (diversity: number) => {
      const { m, x } = setup(backend, 16);
      m.b.fill(2); // every output starts out mostly positive
      const opt = new SGD(m, { lr: 1, groups: { w: { frozen: true } } });
      const tta = new Adapter(m, opt, { diversity });
      let r = tta.step(x);
      for (let s = 1; s < 150; s++) r = tta.step(x);
      if (diversity !== 0)
        expect(Array.from(defined(tta.marginal, "marginal"))).toEqual(Array.from(defined(r.marginal, "r.marginal")));
      return { positive: Array.from(r.positive), mean: Array.from(r.meanPrediction) };
    };
    // λ = 30: the term reaches each batch through the (1 − β) = 0.1 share of the marginal.
    const plain = run(0),
      diverse = run(30);
    const gap = (v: number[]) => Math.max(...v.map((p, o) => Math.abs(p - PRIOR[o])));
    expect(Math.min(...plain.positive.map((p) => Math.abs(p - 0.5)))).toBeGreaterThan(0.45); // collapsed
    expect(gap(plain.mean)).toBeGreaterThan(0.5);
    expect(gap(diverse.mean)).toBeLessThan(0.1);
  });

  it("options are checked and a throwing step changes nothing", () => {
    const { m, x } = setup(backend, 17);
    const opt = new SGD(m, { lr: 0.1, momentum: 0.9, groups: { w: { frozen: true } } });
    const bad: [unknown, string][] = [
      [{ maxEntropy: -1 }, "OPTION"],
      [{ maxEntropy: NaN }, "OPTION"],
      [{ weighting: "eata" }, "OPTION"],
      [{ weighting: "sar", maxEntropy: 1 }, "OPTION"],
      [{ diversity: -0.5 }, "OPTION"],
      [{ diversity: 1, prior: 1.5 }, "OPTION"],
      [{ diversity: 1, prior: Float32Array.of(0.5) }, "SHAPE"],
      [{ diversity: 1, prior: [0.1, 0.2, 0.3, 0.2, 0.2] }, "OPTION"],
      [{ diversity: 1, marginal: Float32Array.of(0.5, 0.5, 0.5, 0.5, -0.1) }, "OPTION"],
      [{ diversity: 1, marginal: Float32Array.of(0.5, 0.5) }, "SHAPE"],
      [{ diversity: 1, marginalMomentum: 1 }, "OPTION"],
      [{ threshold: 1 }, "OPTION"],
      [3, "OPTION"],
    ];
    const s0 = snapshot(m);
    for (const [adapt, code] of bad) {
      expectCode(() => opt.step(x, { adapt: adapt as AdaptOptions }), code, JSON.stringify(adapt));
      expectCode(() => m.gradients(x, { adapt: adapt as AdaptOptions }), code, JSON.stringify(adapt));
    }
    expectCode(() => m.gradients(x, { reduction: "none", adapt: {} }), "OPTION", "reduction none");
    expectCode(() => new Adapter(m, opt, { maxEntropy: -2 }), "OPTION", "Adapter maxEntropy");
    expectCode(() => new Adapter(m, opt, { resetBelow: -1 }), "OPTION", "Adapter resetBelow");
    expectCode(() => new Adapter(m, opt, { emaMomentum: 1.5 }), "OPTION", "Adapter emaMomentum");
    expectCode(() => new Adapter(m, opt, { lr: 1 } as never), "OPTION", "Adapter unknown key");
    expectCode(() => new Adapter(m, {} as never), "OPTION", "Adapter without optimizer");
    expect(snapshot(m)).toEqual(s0);

    const tta = new Adapter(m, opt, { maxEntropy: 3, weighting: "eata", diversity: 0.3 });
    tta.step(x);
    const before = { ...snapshot(m), state: opt.stateDict(), ema: tta.ema, steps: tta.steps };
    const nan = x.slice();
    nan[5] = NaN;
    expectCode(() => tta.step(nan), "NON_FINITE", "NaN x");
    // An EATA weight that overflows float32: exp(E0 − H) with E0 = 1000 bits.
    const overflow = new Adapter(m, opt, { maxEntropy: 1000, weighting: "eata" });
    expectCode(() => overflow.step(x), "NON_FINITE", "weight overflow");
    expect({ ...snapshot(m), state: opt.stateDict(), ema: tta.ema, steps: tta.steps }).toEqual(before);
    expect(overflow.steps).toBe(0);
    m.dispose();
    expectCode(() => tta.step(x), "DISPOSED");
    expectCode(() => tta.reset(), "DISPOSED");
  });
});

describe("adapt across backends", () => {
  it("the three backends agree on a run of Adapter steps", () => {
    const out = BACKENDS.map((backend) => {
      const { m, x, e0 } = setup(backend, 18);
      const opt = new SGD(m, { lr: 0.5, groups: { w: { frozen: true }, g: { weightDecay: 0.01 } } });
      const tta = new Adapter(m, opt, { maxEntropy: e0, weighting: "eata", diversity: 0.4 });
      const kept: number[] = [];
      for (let s = 0; s < 10; s++) kept.push(tta.step(x).kept);
      return { g: Array.from(m.g), kept };
    });
    for (const o of out.slice(1)) {
      expect(o.kept).toEqual(out[0].kept);
      expectClose(o.g, out[0].g, 1e-4, "g after 10 steps");
    }
  });

  it("metrics come back without adapt options changing the loss", () => {
    const { m, x } = setup("js", 19);
    const plain = m.gradients(x);
    const loss = plain.loss;
    const dw = plain.dw.slice();
    const r = m.gradients(x, { adapt: {} });
    // The pass adds up the per-unit losses as stored (float32): the same loss to float32 rounding.
    expectCloseNumber(r.loss, loss, 1e-6 * Math.abs(loss), "loss");
    expectClose(
      r.dw,
      dw,
      Array.from(dw, (v) => 1e-6 * Math.abs(v) + 1e-12),
      "dw",
    );
    expect(r.adapt?.kept).toBe(BATCH);
    expect(r.adapt?.filtered).toBe(0);
    expect(Array.from(defined(r.adapt, "r.adapt").weights)).toEqual(new Array(BATCH).fill(1));
  });
});
