// Test-time adaptation: the pass between the objective and the weight gradient (crate/src/adapt.rs).
//
//   Hₙ = Σₒ H[n,o]                                   sample entropy (bits)
//   keepₙ = !filter || Hₙ ≤ E0                        EATA's filter
//   wₙ = keepₙ ? (eata ? exp(E0 − Hₙ) : 1) : 0        EATA's weight 1/exp(Hₙ − E0), held constant
//   K = Σₙ keepₙ,  mₒ = (1/B)·Σₙ D[n,o],  p̄ₒ = β·p̄⁻ₒ + (1 − β)·mₒ   (p̄⁻: the running marginal before)
//   loss = s′·Σₙ wₙ·Σₒ ℓ[n,o] + λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ)     KL: Bernoulli, in bits
//   s′ = 1/K (mean; 0 when K = 0) or 1 (sum)
//   δ ← wₙ·(s′/scale)·δ + λ·scale·(1 − β)·(p̄ₒ − πₒ)/(p̄ₒ(1 − p̄ₒ)·ln2)·D(1−D)
//   (p̄ clipped to [1e−6, 1 − 1e−6] in the term and its slope; p̄⁻ held constant)

import { AdaptFlag } from "../core/abi.js";

/** p̄ is kept in [P_MIN, 1 − P_MIN] inside the diversity term. */
export const P_MIN = 1e-6;

/** The pass's settings (flags, E0, λ), outputs and results (adapt::AdaptWork's JS twin). */
export interface AdaptArgs {
  /** `AdaptFlag` bits. */
  flags: number;
  maxEntropy: number;
  diversity: number;
  /** batch: wₙ, 0 for a skipped sample. */
  sampleWeights: Float32Array;
  /** outputs: fraction of the batch with D > 0.5. */
  positive: Float32Array;
  /** outputs: mₒ, this batch's mean prediction. */
  mean: Float32Array;
  /** outputs, read with the diversity term: πₒ, and the running marginal before this batch. */
  prior: Float32Array;
  marginal: Float32Array;
  /** β of the running marginal. */
  marginalMomentum: number;
  /** outputs, written with the diversity term: p̄ₒ. */
  running: Float32Array;
  /** Written by the pass: K. */
  kept: number;
  /** Written by the pass: λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ). */
  diversityLoss: number;
}

/** KL(Bern(π) ‖ Bern(p)) in bits (0·log 0 = 0), for p inside (0, 1). */
export function bernoulliKl(pi: number, p: number): number {
  const t = (a: number, b: number): number => (a > 0 ? a * Math.log2(a / b) : 0);
  return t(pi, p) + t(1 - pi, 1 - p);
}

/** Runs the pass over one batch; rescales delta in place and returns the adaptation loss. */
export function adapt(
  z: Float32Array,
  d: Float32Array,
  unitEntropy: Float32Array,
  unitLoss: Float32Array,
  delta: Float32Array,
  batch: number,
  outputs: number,
  scale: number,
  a: AdaptArgs,
): number {
  const filter = (a.flags & AdaptFlag.Filter) !== 0;
  const eata = (a.flags & AdaptFlag.Eata) !== 0;
  const mean = (a.flags & AdaptFlag.Mean) !== 0;
  const e0 = a.maxEntropy;
  const weights = a.sampleWeights;
  let kept = 0,
    weighted = 0;
  for (let s = 0; s < batch; s++) {
    let h = 0,
      l = 0;
    for (let k = s * outputs, end = k + outputs; k < end; k++) {
      h += unitEntropy[k];
      l += unitLoss[k];
    }
    const keep = !filter || h <= e0;
    weights[s] = !keep ? 0 : eata ? Math.exp(e0 - h) : 1;
    if (keep) kept++;
    weighted += weights[s] * l;
  }
  const sKept = mean ? (kept === 0 ? 0 : 1 / kept) : 1;
  const ratio = scale !== 0 ? Math.fround(sKept / scale) : 0;

  const lambda = a.diversity;
  const beta = a.marginalMomentum;
  const invBatch = batch > 0 ? 1 / batch : 0;
  let diversity = 0;
  for (let o = 0; o < outputs; o++) {
    let sum = 0,
      pos = 0;
    for (let k = o; k < batch * outputs; k += outputs) {
      sum += d[k];
      if (d[k] > 0.5) pos++;
    }
    const p = sum * invBatch;
    a.mean[o] = p;
    a.positive[o] = pos * invBatch;
    let slope = 0;
    if (lambda !== 0 && batch > 0) {
      const running = beta * a.marginal[o] + (1 - beta) * p;
      a.running[o] = running;
      const pi = a.prior[o],
        pc = Math.min(Math.max(running, P_MIN), 1 - P_MIN);
      diversity += bernoulliKl(pi, pc);
      slope = Math.fround((lambda * scale * (1 - beta) * (pc - pi)) / (pc * (1 - pc)) / Math.LN2);
    } else if (lambda !== 0) {
      // An empty batch leaves the running marginal where it was (as the core does).
      a.running[o] = a.marginal[o];
    }
    for (let s = 0; s < batch; s++) {
      const k = s * outputs + o;
      let v = weights[s] * ratio * delta[k];
      if (slope !== 0) {
        const e = Math.exp(-Math.abs(z[k]));
        v += (slope * e) / ((1 + e) * (1 + e));
      }
      delta[k] = v;
    }
  }
  a.kept = kept;
  a.diversityLoss = lambda * batch * scale * diversity;
  return sKept * weighted + a.diversityLoss;
}
