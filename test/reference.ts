// The independent oracle: entrograd's math in float64, written from the formulas alone.
// Nothing here imports the package. Keep it small enough to check by eye.
//
//   z = x·(W+G)ᵀ + b               per sample, D = σ(z)
//   H(z)  = (softplus(z) − z·D)/ln2  (bits)  = −(1/ln2)∫_{−∞}^{z} t dσ(t)
//   CE(z,y) = (softplus(z) − y·z)/ln2 (bits)
//   loss per unit = αE·H + αC·CE;   δ = ∂loss/∂z = αE·(−z·D(1−D))/ln2 + αC·(D − y)/ln2
//   dW = dG = δᵀ·x,  db = Σₙ δ     (δ scaled by 1/batch for "mean")
//   SGD as torch.optim.SGD.

export const LN2 = Math.LN2;

// ---- scalar functions, stable for any finite z -------------------------------------------

/** σ(z) without overflow: with e = exp(−|z|), σ = 1/(1+e) for z ≥ 0, e/(1+e) otherwise. */
export function sigmoid(z: number): number {
  const e = Math.exp(-Math.abs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/** σ'(z) = σ(1−σ) = e/(1+e)². */
export function sigmoidSlope(z: number): number {
  const e = Math.exp(-Math.abs(z));
  return e / ((1 + e) * (1 + e));
}

/** softplus(z) = ln(1+eᶻ) = max(z,0) + log1p(exp(−|z|)). */
export function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/** Binary entropy of σ(z) in bits. H is even in z; with a = |z|, e = exp(−a):
 *  H·ln2 = softplus(a) − a·σ(a) = log1p(e) + a·e/(1+e)  (two positive terms: no cancellation). */
export function entropyBits(z: number): number {
  const a = Math.abs(z);
  const e = Math.exp(-a);
  return (Math.log1p(e) + (a * e) / (1 + e)) / LN2;
}

/** Binary cross-entropy of σ(z) against y in bits. */
export function crossEntropyBits(z: number, y: number): number {
  return (softplus(z) - y * z) / LN2;
}

export interface Weights {
  entropy: number;
  crossEntropy: number;
}

/** Objective as the API reads it: omitted → { entropy: 1 }; a given object's missing keys are 0. */
export function weightsOf(objective?: { entropy?: number; crossEntropy?: number }): Weights {
  if (!objective) return { entropy: 1, crossEntropy: 0 };
  return { entropy: objective.entropy ?? 0, crossEntropy: objective.crossEntropy ?? 0 };
}

/** ∂(αE·H + αC·CE)/∂z, unscaled. */
export function unitDelta(z: number, y: number, a: Weights): number {
  const dH = (-z * sigmoidSlope(z)) / LN2;
  const dCE = (sigmoid(z) - y) / LN2;
  return a.entropy * dH + a.crossEntropy * dCE;
}

// ---- a layer --------------------------------------------------------------------------------

export interface Params {
  inputs: number;
  outputs: number;
  w: ArrayLike<number>; // outputs × inputs
  g: ArrayLike<number>; // outputs × inputs
  b: ArrayLike<number>; // outputs
}

export type Reduction = "mean" | "sum" | "none";

export interface EvalOptions {
  objective?: { entropy?: number; crossEntropy?: number };
  targets?: ArrayLike<number>;
  reduction?: Reduction;
}

export interface Evaluation {
  batch: number;
  z: Float64Array; // batch × outputs
  d: Float64Array;
  unitEntropy: Float64Array; // H per unit
  unitLoss: Float64Array; // αE·H + αC·CE per unit
  loss: number; // reduced ("none": the sum, of which dw/dg/db are the gradient)
  entropy: number; // H reduced the same way
  delta: Float64Array; // ∂loss/∂z, scaled
  dw: Float64Array; // = dg
  db: Float64Array;
}

export function batchOf(p: { inputs: number }, x: ArrayLike<number>): number {
  const batch = x.length / p.inputs;
  if (!Number.isInteger(batch) || batch <= 0) throw new Error("reference: bad batch");
  return batch;
}

/** z and σ(z) in float64 from the given (float32) parameters. */
export function forward(p: Params, x: ArrayLike<number>): { batch: number; z: Float64Array; d: Float64Array } {
  const { inputs: I, outputs: O } = p;
  const B = batchOf(p, x);
  const z = new Float64Array(B * O);
  const d = new Float64Array(B * O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      let s = p.b[o];
      for (let i = 0; i < I; i++) s += x[n * I + i] * (p.w[o * I + i] + p.g[o * I + i]);
      z[n * O + o] = s;
      d[n * O + o] = sigmoid(s);
    }
  return { batch: B, z, d };
}

/** Everything a call computes, in float64. */
export function evaluate(p: Params, x: ArrayLike<number>, opts: EvalOptions = {}): Evaluation {
  const { inputs: I, outputs: O } = p;
  const a = weightsOf(opts.objective);
  const { batch: B, z, d } = forward(p, x);
  const targets = a.crossEntropy !== 0 ? opts.targets : null;
  if (targets === undefined) throw new Error("reference: a cross-entropy objective needs targets");
  const scale = (opts.reduction ?? "mean") === "mean" ? 1 / B : 1;
  const unitEntropy = new Float64Array(B * O);
  const unitLoss = new Float64Array(B * O);
  const delta = new Float64Array(B * O);
  let loss = 0;
  let entropy = 0;
  for (let k = 0; k < B * O; k++) {
    const y = targets !== null ? targets[k] : 0;
    const h = entropyBits(z[k]);
    const l = a.entropy * h + (a.crossEntropy !== 0 ? a.crossEntropy * crossEntropyBits(z[k], y) : 0);
    unitEntropy[k] = h;
    unitLoss[k] = l;
    delta[k] = scale * unitDelta(z[k], y, a);
    loss += l;
    entropy += h;
  }
  const dw = new Float64Array(O * I);
  const db = new Float64Array(O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      const dl = delta[n * O + o];
      db[o] += dl;
      for (let i = 0; i < I; i++) dw[o * I + i] += dl * x[n * I + i];
    }
  return { batch: B, z, d, unitEntropy, unitLoss, loss: loss * scale, entropy: entropy * scale, delta, dw, db };
}

/** The reduced loss alone (for finite differences). */
export function lossOf(p: Params, x: ArrayLike<number>, opts: EvalOptions = {}): number {
  return evaluate(p, x, opts).loss;
}

// ---- SGD as torch.optim.SGD -------------------------------------------------------------------

export interface Rule {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  frozen?: boolean;
}

export interface SGDOptions extends Rule {
  groups?: Partial<Record<"w" | "g" | "b", Partial<Rule>>>;
}

/** The float64 twin of `new SGD(model, options)` over parameters copied from a model. */
export class ReferenceSGD {
  readonly p: { inputs: number; outputs: number; w: Float64Array; g: Float64Array; b: Float64Array };
  private rules: Record<"w" | "g" | "b", Rule>;
  private bufs: Partial<Record<"w" | "g" | "b", Float64Array>> = {};
  private ownLr: Record<"w" | "g" | "b", boolean>;

  constructor(start: Params, options: SGDOptions) {
    this.p = {
      inputs: start.inputs,
      outputs: start.outputs,
      w: Float64Array.from(start.w),
      g: Float64Array.from(start.g),
      b: Float64Array.from(start.b),
    };
    const { groups = {}, ...base } = options;
    this.ownLr = { w: groups.w?.lr !== undefined, g: groups.g?.lr !== undefined, b: groups.b?.lr !== undefined };
    this.rules = {
      w: { ...base, ...groups.w },
      g: { ...base, ...groups.g },
      b: { ...base, ...groups.b },
    };
  }

  /** The optimizer's `lr` setter: changes the base lr; a group with its own lr keeps it. */
  set lr(lr: number) {
    for (const k of ["w", "g", "b"] as const) if (!this.ownLr[k]) this.rules[k].lr = lr;
  }

  /** One step; returns loss and entropy before the update, as the optimizer does. */
  step(x: ArrayLike<number>, opts: EvalOptions = {}): { loss: number; entropy: number } {
    const e = evaluate(this.p, x, opts);
    this.update("w", e.dw);
    this.update("g", e.dw); // dG = dW
    this.update("b", e.db);
    return { loss: e.loss, entropy: e.entropy };
  }

  private update(k: "w" | "g" | "b", grad: Float64Array) {
    const r = this.rules[k];
    if (r.frozen) return;
    const theta = this.p[k];
    const mu = r.momentum ?? 0;
    const tau = r.dampening ?? 0;
    const lambda = r.weightDecay ?? 0;
    const u = Float64Array.from(grad, (gr, i) => gr + lambda * theta[i]);
    if (mu !== 0) {
      let buf = this.bufs[k];
      if (!buf) buf = this.bufs[k] = Float64Array.from(u);
      else for (let i = 0; i < u.length; i++) buf[i] = mu * buf[i] + (1 - tau) * u[i];
      for (let i = 0; i < u.length; i++) u[i] = r.nesterov ? u[i] + mu * buf[i] : buf[i];
    }
    for (let i = 0; i < theta.length; i++) theta[i] -= r.lr * u[i];
  }
}

// ---- Adam with decoupled weight decay, as torch.optim.AdamW ------------------------------------

export interface AdamRule {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  frozen?: boolean;
}

export interface AdamOptions extends AdamRule {
  groups?: Partial<Record<"w" | "g" | "b", Partial<AdamRule>>>;
}

/** θ ← θ·(1 − lr·λ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
 *  θ ← θ − lr·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ); t counts this parameter's steps. */
export class ReferenceAdam {
  readonly p: { inputs: number; outputs: number; w: Float64Array; g: Float64Array; b: Float64Array };
  private rules: Record<"w" | "g" | "b", AdamRule>;
  private state: Partial<Record<"w" | "g" | "b", { t: number; m: Float64Array; v: Float64Array }>> = {};

  constructor(start: Params, options: AdamOptions) {
    this.p = {
      inputs: start.inputs,
      outputs: start.outputs,
      w: Float64Array.from(start.w),
      g: Float64Array.from(start.g),
      b: Float64Array.from(start.b),
    };
    const { groups = {}, ...base } = options;
    this.rules = { w: { ...base, ...groups.w }, g: { ...base, ...groups.g }, b: { ...base, ...groups.b } };
  }

  step(x: ArrayLike<number>, opts: EvalOptions = {}): { loss: number; entropy: number } {
    const e = evaluate(this.p, x, opts);
    this.update("w", e.dw);
    this.update("g", e.dw);
    this.update("b", e.db);
    return { loss: e.loss, entropy: e.entropy };
  }

  private update(k: "w" | "g" | "b", grad: Float64Array) {
    const r = this.rules[k];
    if (r.frozen) return;
    const [b1, b2] = r.betas ?? [0.9, 0.999];
    const eps = r.eps ?? 1e-8;
    const lambda = r.weightDecay ?? 0;
    const theta = this.p[k];
    this.state[k] ??= { t: 0, m: new Float64Array(theta.length), v: new Float64Array(theta.length) };
    const s = this.state[k];
    s.t++;
    const c1 = 1 - b1 ** s.t;
    const c2 = 1 - b2 ** s.t;
    for (let i = 0; i < theta.length; i++) {
      theta[i] *= 1 - r.lr * lambda;
      s.m[i] = b1 * s.m[i] + (1 - b1) * grad[i];
      s.v[i] = b2 * s.v[i] + (1 - b2) * grad[i] * grad[i];
      theta[i] -= (r.lr * (s.m[i] / c1)) / (Math.sqrt(s.v[i] / c2) + eps);
    }
  }
}

// ---- quadrature -------------------------------------------------------------------------------

/** Composite Simpson rule for ∫_a^b f (n even). */
export function simpson(f: (t: number) => number, a: number, b: number, n: number): number {
  if (n % 2) n++;
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let k = 1; k < n; k++) s += (k % 2 ? 4 : 2) * f(a + k * h);
  return (s * h) / 3;
}

// ---- seeded test data ---------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG for test data (not the package's generator). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** uniform in [0, 1) */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
}
