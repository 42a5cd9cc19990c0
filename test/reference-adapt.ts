// The float64 oracle of test-time adaptation, written from the formulas alone (docs/api.md,
// "Test-time adaptation"). Nothing here imports the package.
//
//   Hₙ = Σₒ H[n,o] (bits), ℓₙ = Σₒ loss[n,o]
//   keepₙ = no maxEntropy || Hₙ ≤ E0;  wₙ = keepₙ ? (eata ? 1/exp(Hₙ − E0) : 1) : 0   (constants)
//   K = Σ keepₙ;  s′ = mean ? (K ? 1/K : 0) : 1;  scale = mean ? 1/B : 1
//   mₒ = (1/B)·Σₙ D[n,o];  p̄ₒ = β·p̄⁻ₒ + (1 − β)·mₒ  (p̄⁻: the running marginal before, a constant)
//   KL(π ‖ p) = π·log2(π/p) + (1−π)·log2((1−π)/(1−p))
//   loss = s′·Σₙ wₙ·ℓₙ + λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ)
//   ∂loss/∂z[n,o] = s′·wₙ·∂loss[n,o]/∂z + λ·B·scale·KL′(p̄ₒ)·(1 − β)·σ′(z[n,o])/B,
//   KL′(p) = (−π/p + (1−π)/(1−p))/ln 2   (p̄ clipped to [1e−6, 1 − 1e−6] in the term)

import * as ref from "./reference";

export interface AdaptRef {
  maxEntropy?: number;
  weighting?: "none" | "eata";
  diversity?: number;
  /** πₒ (required with diversity): a number for every output or one per output. */
  prior?: number | ArrayLike<number>;
  /** p̄⁻ₒ, the running marginal before this batch; default: the prior. */
  marginal?: ArrayLike<number>;
  /** β; default 0. */
  marginalMomentum?: number;
}

export interface AdaptedEvaluation {
  loss: number;
  /** Mean per-sample entropy over the whole batch. */
  meanEntropy: number;
  sampleEntropy: Float64Array;
  weights: Float64Array;
  kept: number;
  meanPrediction: Float64Array;
  positive: Float64Array;
  /** p̄ₒ (with diversity). */
  running: Float64Array;
  diversity: number;
  dw: Float64Array;
  db: Float64Array;
  /** Σ|terms| of each gradient entry: the scale float32 rounding is relative to. */
  dwMag: Float64Array;
  dbMag: Float64Array;
}

/** Binary entropy of p in bits. */
export function h(p: number): number {
  const t = (q: number) => (q > 0 ? -q * Math.log2(q) : 0);
  return t(p) + t(1 - p);
}

/**
 * Everything one adapted gradients call computes. `fixed` holds the sample weights and K
 * constant (EATA's weights carry no gradient): finite differences of `loss` then give dw, db.
 */
export function evaluateAdapted(
  p: ref.Params,
  x: ArrayLike<number>,
  opts: ref.EvalOptions & { adapt: AdaptRef },
  fixed?: { weights: ArrayLike<number>; kept: number },
): AdaptedEvaluation {
  const { inputs: I, outputs: O } = p;
  const mean = (opts.reduction ?? "mean") === "mean";
  // Unscaled per-unit values: the sum reduction.
  const e = ref.evaluate(p, x, { ...opts, reduction: "sum" });
  const B = e.batch;
  const scale = mean ? 1 / B : 1;
  const { maxEntropy, weighting = "none", diversity: lambda = 0 } = opts.adapt;
  const sampleEntropy = new Float64Array(B);
  let weights = new Float64Array(B);
  let kept = 0;
  const sampleLoss = new Float64Array(B);
  for (let n = 0; n < B; n++) {
    for (let o = 0; o < O; o++) {
      sampleEntropy[n] += e.unitEntropy[n * O + o];
      sampleLoss[n] += e.unitLoss[n * O + o];
    }
    const keep = maxEntropy === undefined || sampleEntropy[n] <= maxEntropy;
    if (keep) kept++;
    weights[n] = !keep ? 0 : weighting === "eata" ? 1 / Math.exp(sampleEntropy[n] - (maxEntropy as number)) : 1;
  }
  if (fixed) {
    weights = Float64Array.from(fixed.weights);
    kept = fixed.kept;
  }
  const sKept = mean ? (kept ? 1 / kept : 0) : 1;
  const meanPrediction = new Float64Array(O);
  const positive = new Float64Array(O);
  const running = new Float64Array(O);
  const coef = new Float64Array(O);
  let div = 0;
  const beta = opts.adapt.marginalMomentum ?? 0;
  const priorOf = (o: number): number => {
    const p = opts.adapt.prior;
    if (p === undefined) throw new Error("reference: the diversity term needs a prior");
    return typeof p === "number" ? p : p[o];
  };
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < B; n++) {
      meanPrediction[o] += e.d[n * O + o] / B;
      if (e.d[n * O + o] > 0.5) positive[o] += 1 / B;
    }
    if (lambda === 0) continue;
    const pi = priorOf(o);
    const before = opts.adapt.marginal === undefined ? pi : opts.adapt.marginal[o];
    running[o] = beta * before + (1 - beta) * meanPrediction[o];
    const p = Math.min(Math.max(running[o], 1e-6), 1 - 1e-6);
    div += (pi > 0 ? pi * Math.log2(pi / p) : 0) + (pi < 1 ? (1 - pi) * Math.log2((1 - pi) / (1 - p)) : 0);
    const dkl = (-pi / p + (1 - pi) / (1 - p)) / Math.LN2;
    coef[o] = (lambda * B * scale * dkl * (1 - beta)) / B;
  }
  const diversity = lambda === 0 ? 0 : lambda * B * scale * div;
  let loss = diversity;
  for (let n = 0; n < B; n++) loss += sKept * weights[n] * sampleLoss[n];
  const delta = new Float64Array(B * O);
  const deltaMag = new Float64Array(B * O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      const k = n * O + o;
      const a = sKept * weights[n] * e.delta[k];
      const b = coef[o] * ref.sigmoidSlope(e.z[k]);
      delta[k] = a + b;
      deltaMag[k] = Math.abs(a) + Math.abs(b);
    }
  const dw = new Float64Array(O * I),
    dwMag = new Float64Array(O * I);
  const db = new Float64Array(O),
    dbMag = new Float64Array(O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      const k = n * O + o;
      db[o] += delta[k];
      dbMag[o] += deltaMag[k];
      for (let i = 0; i < I; i++) {
        dw[o * I + i] += delta[k] * x[n * I + i];
        dwMag[o * I + i] += deltaMag[k] * Math.abs(x[n * I + i]);
      }
    }
  let meanEntropy = 0;
  for (let n = 0; n < B; n++) meanEntropy += sampleEntropy[n] / B;
  return {
    loss,
    meanEntropy,
    sampleEntropy,
    weights,
    kept,
    meanPrediction,
    positive,
    running,
    diversity,
    dw,
    db,
    dwMag,
    dbMag,
  };
}

/** As Adapter keeps it: the running marginal of the step before (the prior at first) unless
 * the options give one. */
function carried(adapt: AdaptRef, running: Float64Array | null): AdaptRef {
  if (!adapt.diversity || adapt.marginal !== undefined || running === null) return adapt;
  return { ...adapt, marginal: running };
}

/** A threshold in the widest gap between sample entropies around their median, so no sample
 * lies within float32 rounding of it. */
export function thresholdBetween(sampleEntropy: ArrayLike<number>): number {
  const s = Array.from(sampleEntropy).sort((a, b) => a - b);
  if (s.length < 2) return s[0] + 0.25;
  const lo = Math.floor(s.length / 4);
  const hi = Math.min(Math.max(Math.floor((3 * s.length) / 4), lo + 1), s.length - 1);
  let best = { gap: -1, at: s[lo] };
  for (let i = lo; i < hi; i++)
    if (s[i + 1] - s[i] > best.gap) best = { gap: s[i + 1] - s[i], at: (s[i] + s[i + 1]) / 2 };
  return best.at;
}

/** One SGD step (torch.optim.SGD rules, as ReferenceSGD) with the adapted gradient; w frozen. */
export class ReferenceAdaptSGD {
  readonly p: { inputs: number; outputs: number; w: Float64Array; g: Float64Array; b: Float64Array };
  private buf: { g?: Float64Array; b?: Float64Array } = {};
  constructor(
    start: ref.Params,
    private rules: { g: ref.Rule; b: ref.Rule },
  ) {
    this.p = {
      inputs: start.inputs,
      outputs: start.outputs,
      w: Float64Array.from(start.w),
      g: Float64Array.from(start.g),
      b: Float64Array.from(start.b),
    };
  }
  private running: Float64Array | null = null;
  step(x: ArrayLike<number>, opts: ref.EvalOptions & { adapt: AdaptRef }): AdaptedEvaluation {
    const e = evaluateAdapted(this.p, x, { ...opts, adapt: carried(opts.adapt, this.running) });
    if (opts.adapt.diversity) this.running = e.running;
    this.update("g", e.dw);
    this.update("b", e.db);
    return e;
  }
  reset(): void {
    this.buf = {};
    this.running = null;
  }
  private update(k: "g" | "b", grad: Float64Array) {
    const r = this.rules[k];
    if (r.frozen) return;
    const theta = this.p[k];
    const mu = r.momentum ?? 0;
    const u = Float64Array.from(grad, (gr, i) => gr + (r.weightDecay ?? 0) * theta[i]);
    if (mu !== 0) {
      const prev = this.buf[k];
      const buf = prev
        ? Float64Array.from(prev, (v, i) => mu * v + (1 - (r.dampening ?? 0)) * u[i])
        : Float64Array.from(u);
      this.buf[k] = buf;
      for (let i = 0; i < u.length; i++) u[i] = r.nesterov ? u[i] + mu * buf[i] : buf[i];
    }
    for (let i = 0; i < theta.length; i++) theta[i] -= r.lr * u[i];
  }
}

/** Adam (decoupled decay, as ReferenceAdam) for one parameter: θ, and its moments and count. */
interface AdamState {
  t: number;
  m: Float64Array;
  v: Float64Array;
}

/**
 * An adaptation step with any optimizer the package has, from the formulas: w frozen; g and b
 * each SGD (torch.optim.SGD) or Adam (torch.optim.AdamW) or frozen; optional gradient-norm
 * clipping over the updated parameters first (torch.nn.utils.clip_grad_norm_:
 * coef = min(max / (‖grad‖ + 1e-6), 1)).
 */
export class ReferenceAdapt {
  readonly p: { inputs: number; outputs: number; w: Float64Array; g: Float64Array; b: Float64Array };
  private bufs: { g?: Float64Array; b?: Float64Array } = {};
  private adam: { g?: AdamState; b?: AdamState } = {};
  constructor(
    start: ref.Params,
    private kind: "sgd" | "adam",
    private rules: { g: ref.Rule & { betas?: [number, number]; eps?: number }; b: ref.Rule },
    private maxGradNorm = 0,
  ) {
    this.p = {
      inputs: start.inputs,
      outputs: start.outputs,
      w: Float64Array.from(start.w),
      g: Float64Array.from(start.g),
      b: Float64Array.from(start.b),
    };
  }
  private running: Float64Array | null = null;
  step(x: ArrayLike<number>, opts: ref.EvalOptions & { adapt: AdaptRef }): AdaptedEvaluation & { coef: number } {
    const e = evaluateAdapted(this.p, x, { ...opts, adapt: carried(opts.adapt, this.running) });
    if (opts.adapt.diversity) this.running = e.running;
    const dg = Float64Array.from(e.dw),
      db = Float64Array.from(e.db);
    let coef = 1;
    if (this.maxGradNorm > 0) {
      let sq = 0;
      if (!this.rules.g.frozen) for (const v of dg) sq += v * v;
      if (!this.rules.b.frozen) for (const v of db) sq += v * v;
      coef = Math.min(this.maxGradNorm / (Math.sqrt(sq) + 1e-6), 1);
      for (let i = 0; i < dg.length; i++) dg[i] *= coef;
      for (let i = 0; i < db.length; i++) db[i] *= coef;
    }
    this.update("g", dg);
    this.update("b", db);
    return { ...e, coef };
  }
  reset(): void {
    this.bufs = {};
    this.adam = {};
    this.running = null;
  }
  private update(k: "g" | "b", grad: Float64Array) {
    const r = this.rules[k];
    if (r.frozen) return;
    const theta = this.p[k];
    const wd = r.weightDecay ?? 0;
    if (this.kind === "adam") {
      const { betas = [0.9, 0.999], eps = 1e-8 } = r as { betas?: [number, number]; eps?: number };
      const [b1, b2] = betas;
      if (this.adam[k] === undefined)
        this.adam[k] = { t: 0, m: new Float64Array(theta.length), v: new Float64Array(theta.length) };
      const s = this.adam[k];
      s.t++;
      const c1 = 1 - b1 ** s.t,
        c2 = 1 - b2 ** s.t;
      for (let i = 0; i < theta.length; i++) {
        theta[i] *= 1 - r.lr * wd;
        s.m[i] = b1 * s.m[i] + (1 - b1) * grad[i];
        s.v[i] = b2 * s.v[i] + (1 - b2) * grad[i] * grad[i];
        theta[i] -= (r.lr * (s.m[i] / c1)) / (Math.sqrt(s.v[i] / c2) + eps);
      }
      return;
    }
    const mu = r.momentum ?? 0;
    const u = Float64Array.from(grad, (gr, i) => gr + wd * theta[i]);
    if (mu !== 0) {
      const prev = this.bufs[k];
      const buf = prev
        ? Float64Array.from(prev, (v, i) => mu * v + (1 - (r.dampening ?? 0)) * u[i])
        : Float64Array.from(u);
      this.bufs[k] = buf;
      for (let i = 0; i < u.length; i++) u[i] = r.nesterov ? u[i] + mu * buf[i] : buf[i];
    }
    for (let i = 0; i < theta.length; i++) theta[i] -= r.lr * u[i];
  }
}

// ---- input statistics re-estimated on the stream (docs/api.md, "Input statistics") -----------
//
//   balanced: P̃[n,o] = D[n,o] / Σₒ D[n,o] under the statistics so far; q̂ₒ the mean of P̃[·,o] over
//   the stream (the same rule as the statistics: all of it, a moving average, or this batch);
//   wₙ = Σₒ P̃[n,o]·min(πₒ/q̂ₒ, 10); else wₙ = 1.
//   accumulate: mean and variance of every sample seen, weighted by wₙ;
//   ema: this batch's weighted mean and variance, then estimate ← m·estimate + (1 − m)·batch
//   (the first batch sets it); batch: this batch's alone. std = max(√variance, minStd).

export interface StatsRef {
  mode: "accumulate" | "ema" | "batch";
  momentum?: number;
  prior?: ArrayLike<number> | null;
  minStd: number;
}

export class ReferenceStats {
  mean: Float64Array;
  std: Float64Array;
  private rows: { x: number[]; w: number }[] = [];
  private predictions: number[][] = [];
  private q: Float64Array | null = null;
  private est: { mean: Float64Array; variance: Float64Array } | null = null;
  constructor(
    private readonly inputs: number,
    private readonly outputs: number,
    private readonly cfg: StatsRef,
    mean: ArrayLike<number>,
    std: ArrayLike<number>,
  ) {
    this.mean = Float64Array.from(mean);
    this.std = Float64Array.from(std);
  }

  /** Folds a batch in; `p` the layer (for the balanced weights' predictions). */
  fold(x: ArrayLike<number>, p: ref.Params): void {
    const { inputs: I, outputs: O, cfg } = this;
    const B = x.length / I;
    const rows = Array.from({ length: B }, (_, n) => Array.from({ length: I }, (_, i) => x[n * I + i]));
    const w = new Array<number>(B).fill(1);
    if (cfg.prior) {
      const xs = rows.flatMap((r) => r.map((v, i) => (v - this.mean[i]) / this.std[i]));
      const d = ref.forward(p, xs).d;
      const pt = rows.map((_, n) => {
        const s = Array.from({ length: O }, (_, o) => d[n * O + o]).reduce((a, v) => a + v, 0);
        return Array.from({ length: O }, (_, o) => d[n * O + o] / s);
      });
      const batchMean = Array.from({ length: O }, (_, o) => pt.reduce((a, r) => a + r[o], 0) / B);
      if (cfg.mode === "accumulate") {
        this.predictions.push(...pt);
        const all = this.predictions;
        this.q = Float64Array.from({ length: O }, (_, o) => all.reduce((a, r) => a + r[o], 0) / all.length);
      } else if (cfg.mode === "ema" && this.q !== null) {
        const m = cfg.momentum ?? 0.9;
        this.q = this.q.map((v, o) => m * v + (1 - m) * batchMean[o]);
      } else this.q = Float64Array.from(batchMean);
      const q = this.q;
      const prior = cfg.prior;
      for (let n = 0; n < B; n++) {
        w[n] = 0;
        for (let o = 0; o < O; o++) w[n] += pt[n][o] * Math.min(prior[o] / q[o], 10);
      }
    }
    const weighted = (data: { x: number[]; w: number }[]) => {
      const total = data.reduce((a, r) => a + r.w, 0);
      const mean = Float64Array.from({ length: I }, (_, i) => data.reduce((a, r) => a + r.w * r.x[i], 0) / total);
      const variance = Float64Array.from(
        { length: I },
        (_, i) => data.reduce((a, r) => a + r.w * (r.x[i] - mean[i]) ** 2, 0) / total,
      );
      return { mean, variance };
    };
    const batch = rows.map((r, n) => ({ x: r, w: w[n] }));
    let next: { mean: Float64Array; variance: Float64Array };
    if (cfg.mode === "accumulate") {
      this.rows.push(...batch);
      next = weighted(this.rows);
    } else {
      const b = weighted(batch);
      const m = cfg.momentum ?? 0.9;
      next =
        cfg.mode === "ema" && this.est !== null
          ? {
              mean: this.est.mean.map((v, i) => m * v + (1 - m) * b.mean[i]),
              variance: this.est.variance.map((v, i) => m * v + (1 - m) * b.variance[i]),
            }
          : b;
    }
    this.est = next;
    this.mean = Float64Array.from(next.mean);
    this.std = next.variance.map((v) => Math.max(Math.sqrt(v), cfg.minStd));
  }
}
