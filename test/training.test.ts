// The training toolkit around the optimizers: Adam/AdamW state, gradient-norm clipping,
// schedulers and fit(). Trajectories against PyTorch itself are in torch.test.ts; these tests
// pin down the API's behaviour (state dicts, errors, callbacks, abort, yielding).
import { beforeAll, describe, expect, it } from "vitest";
import {
  Adam,
  AdamW,
  CosineAnnealingLR,
  EntrogradError,
  ExponentialLR,
  fit,
  init,
  LinearLR,
  Model,
  SequentialLR,
  SGD,
  StepLR,
} from "entrograd";
import * as ref from "./reference";
import { BACKENDS, batchX, bits, defined, expectClose, expectCode, snapshot, targetsFor } from "./helpers";

beforeAll(async () => {
  await init();
});

type AnyModel = InstanceType<typeof Model>;
const same = (a: AnyModel, b: AnyModel) => {
  for (const k of ["w", "g", "b"] as const) expect(Array.from(bits(a[k])), k).toEqual(Array.from(bits(b[k])));
};

function data(seed: number, batches = 3, batch = 6, inputs = 5, outputs = 3) {
  const rng = new ref.Rng(seed);
  return Array.from({ length: batches }, () => ({
    x: batchX(rng, batch, inputs),
    targets: targetsFor(rng, batch * outputs),
  }));
}
const CE = (targets: Float32Array) => ({ objective: { crossEntropy: 1, entropy: 0.1 }, targets });

describe.each(BACKENDS)("Adam state on %s", (backend) => {
  it("stateDict() is plain data with per-parameter steps; a frozen parameter has none", () => {
    const m = new Model({ inputs: 5, outputs: 3, seed: 1, backend });
    const opt = new Adam(m, { lr: 0.01, groups: { w: { frozen: true } } });
    const d = data(2);
    for (const { x, targets } of d) opt.step(x, CE(targets));
    const s = opt.stateDict();
    expect(structuredClone(s)).toStrictEqual(s);
    expect(s.type).toBe("Adam");
    expect(s.steps).toBe(3);
    expect(s.state.w).toEqual({ step: 0, expAvg: null, expAvgSq: null });
    expect(s.state.g.step).toBe(3);
    expect(s.state.b.expAvgSq).toBeInstanceOf(Float32Array);
    expect(s.state.b.expAvgSq?.length).toBe(3);
    m.dispose();
  });

  it("loadStateDict() into a twin continues bit for bit; reset() makes the next step a first step", () => {
    const m = new Model({ inputs: 5, outputs: 3, seed: 3, backend });
    const opt = new Adam(m, { lr: 0.02, weightDecay: 0.1, groups: { g: { lr: 0.005, betas: [0.8, 0.99] } } });
    const d = data(4);
    for (const { x, targets } of d) opt.step(x, CE(targets));
    const twin = m.clone();
    const opt2 = new Adam(twin, { lr: 0.02, weightDecay: 0.1, groups: { g: { lr: 0.005, betas: [0.8, 0.99] } } });
    opt2.loadStateDict(structuredClone(opt.stateDict()));
    for (let s = 0; s < 4; s++) {
      const { x, targets } = d[s % 3];
      expect(opt2.step(x, CE(targets)).loss).toBe(opt.step(x, CE(targets)).loss);
      same(twin, m);
    }
    // reset(): like a fresh optimizer from here.
    const fresh = m.clone();
    const of = new Adam(fresh, { lr: 0.02, weightDecay: 0.1, groups: { g: { lr: 0.005, betas: [0.8, 0.99] } } });
    opt.reset();
    expect(opt.stateDict().state.g).toEqual({ step: 0, expAvg: null, expAvgSq: null });
    opt.step(d[0].x, CE(d[0].targets));
    of.step(d[0].x, CE(d[0].targets));
    same(m, fresh);
    for (const o of [m, twin, fresh]) o.dispose();
  });

  it("a bad state dict changes nothing: OPTION, SHAPE, NON_FINITE", () => {
    const m = new Model({ inputs: 4, outputs: 2, seed: 5, backend });
    const opt = new Adam(m, { lr: 0.01 });
    const d = data(6, 2, 4, 4, 2);
    opt.step(d[0].x, CE(d[0].targets));
    const good = opt.stateDict();
    const before = structuredClone(good);
    const sgd = new SGD(m.clone(), { lr: 0.1, momentum: 0.9 }).stateDict();
    expectCode(() => opt.loadStateDict(sgd as never), "OPTION", "an SGD dict");
    const short = structuredClone(good);
    short.state.g.expAvg = new Float32Array(3);
    expectCode(() => opt.loadStateDict(short), "SHAPE", "wrong length");
    const nan = structuredClone(good);
    defined(nan.state.b.expAvgSq, "b's second moment")[1] = NaN;
    expectCode(() => opt.loadStateDict(nan), "NON_FINITE", "NaN moment");
    const half = structuredClone(good);
    half.state.w.expAvgSq = null;
    expectCode(() => opt.loadStateDict(half), "OPTION", "one moment without the other");
    const counted = structuredClone(good);
    counted.state.w.step = 0;
    expectCode(() => opt.loadStateDict(counted), "OPTION", "moments with step 0");
    expect(opt.stateDict()).toStrictEqual(before);
    m.dispose();
  });

  it("AdamW is Adam with torch.optim.AdamW's default weight decay 0.01; their state is interchangeable", () => {
    const a = new Model({ inputs: 5, outputs: 3, seed: 7, backend });
    const b = a.clone();
    const c = a.clone();
    const oa = new AdamW(a, { lr: 0.01 });
    const ob = new Adam(b, { lr: 0.01, weightDecay: 0.01 });
    const oc = new Adam(c, { lr: 0.01 });
    for (const { x, targets } of data(8)) {
      oa.step(x, CE(targets));
      ob.step(x, CE(targets));
      oc.step(x, CE(targets));
    }
    same(a, b);
    expect(Array.from(c.w)).not.toEqual(Array.from(a.w));
    expect(oa).toBeInstanceOf(Adam);
    // Interchangeable: AdamW's state (dict or file) in an Adam with the same decay, and Adam's in
    // an AdamW, continue the run bit for bit.
    const twins = [a.clone(), a.clone()];
    const intoAdam = new Adam(twins[0], { lr: 0.01, weightDecay: 0.01 });
    intoAdam.loadStateDict(oa.stateDict());
    const intoAdamW = new AdamW(twins[1], { lr: 0.01 });
    intoAdamW.load(ob.save());
    expect(intoAdamW.stateDict()).toStrictEqual(ob.stateDict());
    for (const { x, targets } of data(9)) {
      const want = oa.step(x, CE(targets)).loss;
      expect(intoAdam.step(x, CE(targets)).loss).toBe(want);
      expect(intoAdamW.step(x, CE(targets)).loss).toBe(want);
    }
    same(twins[0], a);
    same(twins[1], a);
    expect(intoAdam.stateDict()).toStrictEqual(oa.stateDict());
    for (const o of [a, b, c, ...twins]) o.dispose();
  });

  it("options are checked: betas in [0, 1), eps ≥ 0, no unknown keys", () => {
    const m = new Model({ inputs: 2, outputs: 1, backend });
    expectCode(() => new Adam(m, { betas: [1, 0.9] }), "OPTION", "beta1 = 1");
    expectCode(() => new Adam(m, { betas: [0.9] as unknown as [number, number] }), "OPTION", "one beta");
    expectCode(() => new Adam(m, { eps: -1 }), "OPTION", "eps < 0");
    expectCode(() => new Adam(m, { momentum: 0.9 } as never), "OPTION", "SGD's option");
    expectCode(() => new Adam(m, { groups: { g: { nesterov: true } } } as never), "OPTION", "SGD's group option");
    expectCode(() => new Adam(m, { maxGradNorm: -1 }), "OPTION", "maxGradNorm < 0");
    m.dispose();
  });
});

describe.each(BACKENDS)("gradient-norm clipping on %s", (backend) => {
  it("scales the gradient by maxNorm/(norm + 1e-6) when the norm is larger, over the updated parameters only", () => {
    for (const groups of [{}, { w: { frozen: true } }, { b: { frozen: true } }] as const) {
      const m = new Model({ inputs: 5, outputs: 3, seed: 11, backend });
      const x = data(12)[0].x;
      const { dw, db } = m.gradients(x);
      const sq = (a: Float32Array) => Array.from(a).reduce((s, v) => s + v * v, 0);
      const shared = 2 - ("w" in groups ? 1 : 0);
      const norm = Math.sqrt(shared * sq(dw) + ("b" in groups ? 0 : sq(db)));
      const g0 = { dw: Float64Array.from(dw), db: Float64Array.from(db) };
      const start = snapshot(m);
      const max = norm / 4;
      const coef = Math.fround(max / (norm + 1e-6));
      const before = { w: Float64Array.from(m.w), g: Float64Array.from(m.g), b: Float64Array.from(m.b) };
      new SGD(m, { lr: 0.5, maxGradNorm: max, groups }).step(x);
      for (const k of ["w", "g", "b"] as const) {
        if ((groups as Record<string, unknown>)[k]) {
          expect(Array.from(bits(m[k]))).toEqual(Array.from(start[k]));
          continue;
        }
        const grad = k === "b" ? g0.db : g0.dw;
        for (let i = 0; i < grad.length; i++) {
          const want = before[k][i] - 0.5 * coef * grad[i];
          expect(Math.abs(m[k][i] - want), `${k}[${i}]`).toBeLessThan(1e-6 * (Math.abs(want) + 1));
        }
      }
      m.dispose();
    }
  });

  // A planted bug (the coefficient without its + 1e-6) survived every test above: their norms
  // are near 1, where 1e-6 is invisible. Here the norm is ~2e-5 (x ~ 1e-5, b frozen), so the
  // 1e-6 moves the coefficient by several percent; the expected step comes from the float64
  // reference.
  it("the coefficient is maxNorm/(norm + 1e-6): visible when the norm is tiny", () => {
    const rng = new ref.Rng(31);
    const p = { inputs: 3, outputs: 2, w: Array.from(rng.floats(6, -0.02, 0.02)), g: new Array(6).fill(0), b: [0, 0] };
    const x = rng.floats(4 * 3, -1e-5, 1e-5);
    const targets = Float32Array.of(1, 0, 0, 1, 1, 1, 0, 0);
    const opts = { objective: { crossEntropy: 1 }, targets, reduction: "sum" as const };
    const e = ref.evaluate(p, x, opts);
    let sq = 0;
    for (const v of e.dw) sq += 2 * v * v; // w and g both updated, one gradient; b frozen
    const norm = Math.sqrt(sq);
    expect(norm).toBeLessThan(1e-4);
    const max = norm / 2;
    const coef = max / (norm + 1e-6);
    expect(Math.abs(coef - 0.5), "the 1e-6 matters here").toBeGreaterThan(0.005);
    const m = Model.from({ inputs: 3, outputs: 2, w: p.w, backend });
    new SGD(m, { lr: 1, maxGradNorm: max, groups: { b: { frozen: true } } }).step(x, opts);
    const step = (now: Float32Array, was: number[], grad: Float64Array, label: string) => {
      const got = Array.from(now, (v, i) => v - was[i]);
      const want = Array.from(grad, (d) => -coef * d);
      const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      expectClose(got, want, 1e-3 * scale, label);
    };
    step(m.w, p.w, e.dw, "w");
    step(m.g, p.g, e.dw, "g");
    expect(Array.from(m.b)).toEqual([0, 0]);
    m.dispose();
  });

  it("leaves small gradients alone (bitwise), and maxGradNorm can be changed", () => {
    const a = new Model({ inputs: 5, outputs: 3, seed: 13, backend });
    const b = a.clone();
    const x = data(14)[0].x;
    const oa = new SGD(a, { lr: 0.1, momentum: 0.9, maxGradNorm: 1e6 });
    const ob = new SGD(b, { lr: 0.1, momentum: 0.9 });
    oa.step(x);
    ob.step(x);
    same(a, b);
    oa.maxGradNorm = 1e-4;
    expect(oa.maxGradNorm).toBe(1e-4);
    oa.step(x);
    ob.step(x);
    expect(Array.from(a.w)).not.toEqual(Array.from(b.w));
    expectCode(() => (oa.maxGradNorm = -1), "OPTION");
    a.dispose();
    b.dispose();
  });

  it("a non-finite gradient is NON_FINITE with clipping on, and nothing changes", () => {
    const m = new Model({ inputs: 3, outputs: 2, seed: 15, backend });
    m.w.fill(3e38);
    const opt = new Adam(m, { lr: 0.1, maxGradNorm: 1 });
    const before = snapshot(m);
    const state = opt.stateDict();
    expectCode(() => opt.step(new Float32Array([1, 1, 1])), "NON_FINITE");
    expect(snapshot(m)).toEqual(before);
    expect(opt.stateDict()).toStrictEqual(state);
    m.dispose();
  });
});

describe("schedulers", () => {
  const opt = (lr = 0.1, groups = {}) => new SGD(new Model({ inputs: 2, outputs: 1, backend: "js" }), { lr, groups });
  const run = (s: { step(): void }, o: { lr: number }, n: number) => {
    const lrs = [o.lr];
    for (let i = 0; i < n; i++) {
      s.step();
      lrs.push(o.lr);
    }
    return lrs;
  };
  const close = (a: number[], b: number[]) => {
    expect(a.length).toBe(b.length);
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], 15);
  };

  it("StepLR, ExponentialLR, CosineAnnealingLR, LinearLR follow PyTorch's formulas", () => {
    let o = opt();
    close(run(new StepLR(o, { stepSize: 2, gamma: 0.5 }), o, 5), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    o = opt();
    close(run(new ExponentialLR(o, { gamma: 0.9 }), o, 3), [0.1, 0.09, 0.081, 0.0729]);
    o = opt();
    const cos = (t: number) => 0.01 + (0.09 * (1 + Math.cos((Math.PI * t) / 4))) / 2;
    close(run(new CosineAnnealingLR(o, { tMax: 4, etaMin: 0.01 }), o, 8), [0, 1, 2, 3, 4, 5, 6, 7, 8].map(cos));
    o = opt();
    // LinearLR applies its epoch-0 factor when constructed, as PyTorch's does.
    close(run(new LinearLR(o, { startFactor: 0.25, totalIters: 3 }), o, 4), [0.025, 0.05, 0.075, 0.1, 0.1]);
  });

  it("SequentialLR: warm-up then cosine, each part restarted at its milestone", () => {
    const o = opt(0.2);
    const warm = new LinearLR(o, { startFactor: 0.5, totalIters: 2 });
    const cos = new CosineAnnealingLR(o, { tMax: 4 });
    const s = new SequentialLR(o, { schedulers: [warm, cos], milestones: [2] });
    const c = (t: number) => (0.2 * (1 + Math.cos((Math.PI * t) / 4))) / 2;
    close(run(s, o, 5), [0.1, 0.15, c(0), c(1), c(2), c(3)]);
    expectCode(() => new SequentialLR(o, { schedulers: [warm, cos], milestones: [] }), "OPTION");
    expectCode(
      () => new SequentialLR(opt(), { schedulers: [warm], milestones: [] }),
      "OPTION",
      "another optimizer's scheduler",
    );
  });

  it("groups with an lr of their own are scaled from their own initial lr; the others follow opt.lr", () => {
    const o = opt(0.1, { g: { lr: 0.4 } });
    const s = new StepLR(o, { stepSize: 1, gamma: 0.5 });
    s.step();
    expect([o.lr, o.lrOf("w"), o.lrOf("g"), o.lrOf("b")]).toEqual([0.05, 0.05, 0.2, 0.05]);
    const st = s.stateDict();
    expect(st).toEqual({ type: "StepLR", lastEpoch: 1, baseLr: 0.1, baseGroupLr: [null, 0.4, null] });
    // Resume: a new optimizer and scheduler take both state dicts.
    const o2 = opt(0.1, { g: { lr: 0.4 } });
    const s2 = new StepLR(o2, { stepSize: 1, gamma: 0.5 });
    o2.loadStateDict(o.stateDict());
    s2.loadStateDict(st);
    s.step();
    s2.step();
    expect([o2.lr, o2.lrOf("g")]).toEqual([o.lr, o.lrOf("g")]);
    expect(o2.lrOf("g")).toBe(0.1);
  });

  it("options are checked", () => {
    const o = opt();
    expectCode(() => new StepLR(o, {} as never), "OPTION", "no stepSize");
    expectCode(() => new StepLR(o, { stepSize: 1.5 }), "OPTION", "fractional stepSize");
    expectCode(() => new ExponentialLR(o, { gamma: -1 }), "OPTION", "negative gamma");
    expectCode(() => new CosineAnnealingLR(o, { tMax: 0 }), "OPTION", "tMax 0");
    expectCode(() => new LinearLR(o, { startFactor: 0 }), "OPTION", "startFactor 0");
    expectCode(() => new StepLR({} as never, { stepSize: 1 }), "OPTION", "not an optimizer");
  });
});

describe.each(BACKENDS)("fit() on %s", (backend) => {
  const N = 50,
    I = 5,
    O = 3;
  const rng = new ref.Rng(21);
  const X = batchX(rng, N, I);
  const Y = targetsFor(rng, N * O);

  it("without shuffling, equals the hand-written loop bit for bit; history per epoch", async () => {
    const a = new Model({ inputs: I, outputs: O, seed: 1, backend });
    const b = a.clone();
    const oa = new Adam(a, { lr: 0.01 });
    const ob = new Adam(b, { lr: 0.01 });
    const sizes: number[] = [];
    const history = await fit(a, oa, X, {
      epochs: 2,
      batchSize: 16,
      shuffle: false,
      targets: Y,
      objective: { crossEntropy: 1 },
      onBatch: (i) => void sizes.push(i.size),
    });
    expect(sizes).toEqual([16, 16, 16, 2, 16, 16, 16, 2]);
    const want: number[] = [];
    for (let e = 0; e < 2; e++) {
      let sum = 0;
      for (let s = 0; s < N; s += 16) {
        const n = Math.min(16, N - s);
        sum +=
          n *
          ob.step(X.slice(s * I, (s + n) * I), { objective: { crossEntropy: 1 }, targets: Y.slice(s * O, (s + n) * O) })
            .loss;
      }
      want.push(sum / N);
    }
    same(a, b);
    expect(history.loss).toEqual(want);
    expect(history.entropy.length).toBe(2);
    a.dispose();
    b.dispose();
  });

  it("shuffles targets with x (the epoch loss at lr 0 is the data's mean loss); same seed, same run", async () => {
    const m = new Model({ inputs: I, outputs: O, seed: 2, backend });
    const h = await fit(m, new SGD(m, { lr: 0 }), X, {
      batchSize: 7,
      targets: Y,
      objective: { crossEntropy: 1 },
      seed: 9,
    });
    const full = m.gradients(X, { objective: { crossEntropy: 1 }, targets: Y });
    expect(h.loss[0]).toBeCloseTo(full.loss, 5);
    expect(h.entropy[0]).toBeCloseTo(full.entropy, 5);
    const runs: AnyModel[] = [];
    for (const seed of [5, 5, 6]) {
      const r = new Model({ inputs: I, outputs: O, seed: 3, backend });
      await fit(r, new SGD(r, { lr: 0.3, momentum: 0.9 }), X, {
        epochs: 2,
        batchSize: 8,
        seed,
        targets: Y,
        objective: { crossEntropy: 1 },
      });
      runs.push(r);
    }
    same(runs[0], runs[1]);
    expect(Array.from(runs[0].w)).not.toEqual(Array.from(runs[2].w));
    for (const r of [m, ...runs]) r.dispose();
  });

  it("trains: the entropy objective lowers the entropy epoch after epoch", async () => {
    const m = new Model({ inputs: I, outputs: O, seed: 4, backend });
    const h = await fit(m, new Adam(m, { lr: 0.05 }), X, { epochs: 5, batchSize: 10 });
    expect(h.entropy.length).toBe(5);
    expect(h.entropy[4]).toBeLessThan(h.entropy[0]);
    m.dispose();
  });

  it("callbacks: onEpoch per epoch; false stops early", async () => {
    const m = new Model({ inputs: I, outputs: O, seed: 5, backend });
    const epochs: number[] = [];
    const h = await fit(m, new SGD(m, { lr: 0.1 }), X, {
      epochs: 10,
      batchSize: 25,
      onEpoch: async (i) => {
        epochs.push(i.epoch);
        expect(i.batches).toBe(2);
        return i.epoch < 2;
      },
    });
    expect(epochs).toEqual([0, 1, 2]);
    expect(h.loss.length).toBe(3);
    let batches = 0;
    const h2 = await fit(m, new SGD(m, { lr: 0.1 }), X, { epochs: 3, batchSize: 10, onBatch: () => ++batches < 3 });
    expect(batches).toBe(3);
    expect(h2.loss.length).toBe(1);
    m.dispose();
  });

  it("an AbortSignal stops it: rejects with an AbortError (or the given reason); steps before it are kept", async () => {
    const m = new Model({ inputs: I, outputs: O, seed: 6, backend });
    const opt = new SGD(m, { lr: 0.1 });
    const c = new AbortController();
    let steps = 0;
    const run = fit(m, opt, X, {
      epochs: 100,
      batchSize: 5,
      signal: c.signal,
      onBatch: () => void (++steps === 3 && c.abort()),
    });
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(steps).toBe(3);
    const c2 = new AbortController();
    const reason = new Error("enough");
    c2.abort(reason);
    const before = snapshot(m);
    await expect(fit(m, opt, X, { signal: c2.signal })).rejects.toBe(reason);
    expect(snapshot(m)).toEqual(before);
    // An abort from outside while it runs (it yields to the event loop, so the timer fires).
    const c3 = new AbortController();
    setTimeout(() => c3.abort(), 5);
    await expect(fit(m, opt, X, { epochs: 1e6, batchSize: 5, signal: c3.signal, yieldEvery: 0 })).rejects.toMatchObject(
      { name: "AbortError" },
    );
    m.dispose();
  });

  it("yields to the event loop during long runs", async () => {
    const m = new Model({ inputs: I, outputs: O, seed: 7, backend });
    let ticks = 0;
    const t = setInterval(() => ticks++, 1);
    let seen = 0;
    await fit(m, new SGD(m, { lr: 0.01 }), X, {
      epochs: 400,
      batchSize: 5,
      yieldEvery: 2,
      onEpoch: () => {
        seen = Math.max(seen, ticks);
      },
    });
    clearInterval(t);
    expect(seen).toBeGreaterThan(0);
    m.dispose();
  });

  it("errors: OPTION, SHAPE, NON_FINITE", async () => {
    const m = new Model({ inputs: I, outputs: O, seed: 8, backend });
    const other = new Model({ inputs: I, outputs: O, backend });
    const opt = new SGD(m, { lr: 0.1 });
    const code = async (p: Promise<unknown>, c: string) => {
      const e = await p.then(
        () => null,
        (err: unknown) => err,
      );
      expect(e, c).toBeInstanceOf(EntrogradError);
      expect((e as EntrogradError).code).toBe(c);
    };
    await code(fit(other, opt, X), "OPTION");
    await code(fit(m, opt, X.subarray(1)), "SHAPE");
    await code(fit(m, opt, X, { targets: Y.subarray(3), objective: { crossEntropy: 1 } }), "SHAPE");
    await code(fit(m, opt, X, { objective: { crossEntropy: 1 } }), "OPTION");
    await code(fit(m, opt, X, { batchSize: 0 }), "OPTION");
    await code(fit(m, opt, X, { reduction: "none" as never }), "OPTION");
    await code(fit(m, opt, X, { epochs: 2, bogus: 1 } as never), "OPTION");
    const bad = X.slice();
    bad[7] = NaN;
    await code(fit(m, opt, bad, { shuffle: false, batchSize: 50 }), "NON_FINITE");
    m.dispose();
    other.dispose();
  });
});
