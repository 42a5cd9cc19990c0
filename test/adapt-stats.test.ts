// Adapter on every backend: the input statistics re-estimated on the stream (accumulated, moving
// average, per batch; plain or balanced by the prior) against the float64 oracle, alone (no
// optimizer) and before each gradient step; reset() restores G, b and the statistics;
// thresholds relative to the source entropy; the checks, and a failing step changing nothing.
import { beforeAll, describe, expect, it } from "vitest";
import { Adapter, init, Model, SGD } from "entrograd";
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
} from "./helpers";
import * as ref from "./reference";
import { evaluateAdapted, ReferenceAdaptSGD, ReferenceStats, thresholdBetween, type StatsRef } from "./reference-adapt";

beforeAll(async () => {
  await init();
});

const I = 6,
  O = 4,
  B = 16;

/** A model standardising its inputs, with a prior and a source entropy, and a shifted stream
 * whose classes (the output most active) are not in the prior's proportions. */
function setup(backend: (typeof BACKENDS)[number], seed: number) {
  const rng = new ref.Rng(seed);
  const m = Model.from({
    inputs: I,
    outputs: O,
    backend,
    w: rng.floats(I * O, -1.2, 1.2),
    g: rng.floats(I * O, -0.1, 0.1),
    b: rng.floats(O, -0.5, 0.5),
  });
  m.setInputStats(
    Array.from({ length: I }, (_, i) => i - 2),
    Array.from({ length: I }, (_, i) => 0.5 + 0.25 * i),
    { minStd: 0.3 },
  );
  m.setPrior([0.4, 0.3, 0.2, 0.1]);
  m.setSourceEntropy(1.5);
  const stream = Array.from({ length: 5 }, (_, k) => {
    const x = batchX(rng, B, I, 1.5);
    for (let n = 0; n < B; n++) for (let i = 0; i < I; i++) x[n * I + i] = 0.8 * x[n * I + i] * (i + 1) + i + 0.3 * k;
    for (let n = 0; n < B; n++) x[n * I + 3] = 0.25; // a constant input is floored
    return x;
  });
  return { m, stream };
}

const MODES: StatsRef["mode"][] = ["accumulate", "ema", "batch"];

describe.each(BACKENDS)("Adapter and input statistics on %s", (backend) => {
  for (const mode of MODES)
    for (const balance of [false, true])
      it(`${mode}${balance ? ", balanced" : ""}: the statistics follow the oracle; W, G and b stay`, () => {
        const { m, stream } = setup(backend, 1 + MODES.indexOf(mode));
        const st = defined(m.inputStats, "inputStats");
        const twin = new ReferenceStats(
          I,
          O,
          { mode, momentum: 0.8, prior: balance ? defined(m.prior, "prior") : null, minStd: st.minStd },
          st.mean,
          st.std,
        );
        const before = snapshot(m);
        const tta = new Adapter(m, null, {
          inputStats: mode,
          balanceStats: balance,
          ...(mode === "ema" ? { inputStatsMomentum: 0.8 } : {}),
        });
        for (const [k, x] of [...stream, ...stream].entries()) {
          twin.fold(x, paramsOf(m));
          const r = tta.step(x);
          const got = defined(m.inputStats, "inputStats");
          expectClose(
            got.mean,
            twin.mean,
            Array.from(twin.mean, (v) => 2e-5 * (Math.abs(v) + 1)),
            `step ${k}: mean`,
          );
          expectClose(
            got.std,
            twin.std,
            Array.from(twin.std, (v) => 2e-5 * v),
            `step ${k}: std`,
          );
          // The metrics are those of the batch under the new statistics.
          const xs = x.map((v, j) => (v - got.mean[j % I]) / got.std[j % I]);
          expectCloseNumber(
            r.meanEntropy,
            evaluateAdapted(paramsOf(m), xs, { adapt: {} }).meanEntropy,
            1e-4,
            `step ${k}: entropy`,
          );
        }
        expect(defined(m.inputStats, "inputStats").std[3]).toBe(st.minStd);
        expect(snapshot(m)).toEqual(before);
        // Balancing moved the statistics: the weights are not all equal.
        if (balance && mode === "accumulate") {
          const plain = new ReferenceStats(I, O, { mode, minStd: st.minStd }, st.mean, st.std);
          for (const x of [...stream, ...stream]) plain.fold(x, paramsOf(m));
          expect(Math.max(...plain.mean.map((v, i) => Math.abs(v - twin.mean[i])))).toBeGreaterThan(1e-3);
        }
        tta.reset();
        expect(m.inputStats).toEqual(st);
      });

  it("with an optimizer: statistics first, then the step on the newly standardised batch", () => {
    const { m, stream } = setup(backend, 9);
    const st = defined(m.inputStats, "inputStats");
    const stats = new ReferenceStats(I, O, { mode: "accumulate", minStd: st.minStd }, st.mean, st.std);
    const rules = { g: { lr: 0.3, momentum: 0.9 }, b: { lr: 0.1 } };
    const opt = new SGD(m, { lr: 0.3, groups: { w: { frozen: true }, g: rules.g, b: rules.b } });
    const tta = new Adapter(m, opt, { inputStats: "accumulate", balanceStats: false, diversity: 0.5 });
    const twin = new ReferenceAdaptSGD(paramsOf(m), rules);
    for (const [k, x] of stream.entries()) {
      stats.fold(x, twin.p);
      const xs = Array.from(x, (v, j) => (v - stats.mean[j % I]) / stats.std[j % I]);
      const e = twin.step(xs, { adapt: { diversity: 0.5, prior: defined(m.prior, "prior"), marginalMomentum: 0.9 } });
      const r = tta.step(x);
      expectCloseNumber(r.loss, e.loss, 1e-4 * (Math.abs(e.loss) + 1), `step ${k}: loss`);
      expectClose(m.g, twin.p.g, 2e-5 * Math.max(...twin.p.g.map(Math.abs)) + 1e-6, `step ${k}: g`);
      expectClose(m.b, twin.p.b, 2e-5 * Math.max(...twin.p.b.map(Math.abs)) + 1e-6, `step ${k}: b`);
    }
  });

  it("reset() restores G, b and the statistics as they were when the adapter was made", () => {
    const { m, stream } = setup(backend, 10);
    const opt = new SGD(m, { lr: 0.5, momentum: 0.9, groups: { w: { frozen: true } } });
    const s0 = snapshot(m),
      st0 = m.inputStats;
    const tta = new Adapter(m, opt, { inputStats: "ema" });
    for (const x of stream) tta.step(x);
    expect(snapshot(m).g).not.toEqual(s0.g);
    expect(m.inputStats).not.toEqual(st0);
    tta.reset();
    expect(snapshot(m)).toEqual(s0);
    expect(m.inputStats).toEqual(st0);
    // and the stream is forgotten: the next step is a first step again
    const fresh = m.clone();
    const a = tta.step(stream[2]);
    const b = new Adapter(fresh, new SGD(fresh, { lr: 0.5, momentum: 0.9, groups: { w: { frozen: true } } }), {
      inputStats: "ema",
    }).step(stream[2]);
    expect(a.loss).toBe(b.loss);
    expect(bits(m.g)).toEqual(bits(fresh.g));
    expect(m.inputStats).toEqual(fresh.inputStats);
  });

  it("thresholds relative to the source entropy are k times it", () => {
    const { m, stream } = setup(backend, 11);
    const x = stream[0];
    const opt = new SGD(m, { lr: 0.1, groups: { w: { frozen: true } } });
    // A source entropy that puts 0.9 × it between the samples' entropies.
    const probe = m.clone();
    new Adapter(probe, null, { inputStats: "batch" }).step(x);
    const st = defined(probe.inputStats, "inputStats");
    const xs = x.map((v, j) => (v - st.mean[j % I]) / st.std[j % I]);
    const source = thresholdBetween(evaluateAdapted(paramsOf(m), xs, { adapt: {} }).sampleEntropy) / 0.9;
    m.setSourceEntropy(source);
    const rel = new Adapter(m.clone(), null, { inputStats: "batch", maxEntropy: { relative: 0.9 } }).step(x);
    const abs = new Adapter(m.clone(), null, { inputStats: "batch", maxEntropy: 0.9 * source }).step(x);
    expect(rel.kept).toBe(abs.kept);
    expect(rel.kept > 0 && rel.kept < B).toBe(true);
    const t = new Adapter(m, opt, { resetBelow: { relative: 10 } });
    expect(t.step(x).reset).toBe(true); // 10 × the source entropy is above this batch's mean entropy
    m.setSourceEntropy(null);
    expectCode(() => new Adapter(m, opt, { maxEntropy: { relative: 1 } }), "OPTION", "relative without a source");
    m.setSourceEntropy(1);
    expectCode(() => new Adapter(m, opt, { maxEntropy: { relative: -1 } }), "OPTION", "negative");
    expectCode(() => new Adapter(m, opt, { resetBelow: { factor: 1 } as never }), "OPTION", "unknown key");
  });

  it("options are checked, and a step that throws changes neither the model nor the statistics", () => {
    const { m, stream } = setup(backend, 12);
    const opt = new SGD(m, { lr: 0.1, groups: { w: { frozen: true } } });
    expectCode(() => new Adapter(m, null), "OPTION", "nothing to adapt");
    expectCode(() => new Adapter(m, opt, { inputStats: "running" as never }), "OPTION", "unknown mode");
    expectCode(() => new Adapter(m, opt, { inputStatsMomentum: 0.5 }), "OPTION", "momentum without ema");
    expectCode(() => new Adapter(m, opt, { balanceStats: true }), "OPTION", "balance without inputStats");
    const bare = Model.from({ inputs: I, outputs: O, backend, w: m.w });
    expectCode(
      () => new Adapter(bare, new SGD(bare, { lr: 0.1 }), { inputStats: "batch" }),
      "OPTION",
      "statistics need a standardising model",
    );
    bare.setInputStats(new Array(I).fill(0), new Array(I).fill(1));
    expectCode(
      () => new Adapter(bare, new SGD(bare, { lr: 0.1 }), { inputStats: "batch", balanceStats: true }),
      "OPTION",
      "balance needs a prior",
    );
    expect(new Adapter(bare, null, { inputStats: "batch" }).step(stream[0]).batch).toBe(B); // plain by default

    // lr 0 with a huge decay on G: steps leave G as it is until lr makes the update overflow.
    const decayed = (model: Model) =>
      new SGD(model, { lr: 0, groups: { w: { frozen: true }, g: { weightDecay: 3e38 } } });
    const twinModel = m.clone();
    const twin = new Adapter(twinModel, decayed(twinModel), { inputStats: "accumulate" });
    const opt2 = decayed(m);
    const tta = new Adapter(m, opt2, { inputStats: "accumulate" });
    tta.step(stream[0]);
    twin.step(stream[0]);
    const state = { ...snapshot(m), stats: m.inputStats, state: opt2.stateDict() };
    const nan = stream[1].slice();
    nan[7] = Number.NaN;
    expectCode(() => tta.step(nan), "NON_FINITE", "NaN");
    expect({ ...snapshot(m), stats: m.inputStats, state: opt2.stateDict() }).toEqual(state);
    // An update that overflows fails the step after the statistics were folded in: they are put
    // back, and the estimator forgets the batch (the next steps are those of the twin that never
    // saw it).
    opt2.lr = 100;
    expectCode(() => tta.step(stream[1]), "NON_FINITE", "overflow");
    opt2.lr = 0;
    expect({ ...snapshot(m), stats: m.inputStats, state: opt2.stateDict() }).toEqual(state);
    for (const x of stream.slice(1)) expect(tta.step(x).loss).toBe(twin.step(x).loss);
    expect(m.inputStats).toEqual(twinModel.inputStats);
    expect(snapshot(m)).toEqual(snapshot(twinModel));
  });
});
