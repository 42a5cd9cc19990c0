// Test-time adaptation: the pass between the objective and the weight gradient (crate/src/adapt.rs).
//
//   Hₙ = Σₒ H[n,o]                                   sample entropy (bits)
//   keepₙ = !filter || Hₙ ≤ E0                        EATA's filter
//   wₙ = keepₙ ? (eata ? exp(E0 − Hₙ) : 1) : 0        EATA's weight 1/exp(Hₙ − E0), held constant
//   K = Σₙ keepₙ,  p̄ₒ = (1/B)·Σₙ D[n,o]
//   loss = s′·Σₙ wₙ·Σₒ ℓ[n,o] − λ·B·scale·Σₒ h(p̄ₒ)    h: binary entropy in bits
//   s′ = 1/K (mean; 0 when K = 0) or 1 (sum)
//   δ ← wₙ·(s′/scale)·δ − λ·scale·log2((1−p̄ₒ)/p̄ₒ)·D(1−D)   (p̄ clipped to [1e−6, 1−1e−6] in the log)

import { AdaptFlag } from "../core/abi.js";

/** p̄ is kept in [P_MIN, 1 − P_MIN] inside the diversity term's logarithm. */
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
  /** outputs: p̄ₒ. */
  mean: Float32Array;
  /** Written by the pass: K. */
  kept: number;
  /** Written by the pass: −λ·B·scale·Σₒ h(p̄ₒ). */
  diversityLoss: number;
}

/** Binary entropy of p ∈ [0, 1] in bits. */
export function entropyOfMean(p: number): number {
  const t = (q: number): number => (q > 0 ? -q * Math.log2(q) : 0);
  return t(p) + t(1 - p);
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
      diversity += entropyOfMean(p);
      const pc = Math.min(Math.max(p, P_MIN), 1 - P_MIN);
      slope = -lambda * scale * Math.log2((1 - pc) / pc);
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
  a.diversityLoss = -lambda * batch * scale * diversity;
  return sKept * weighted + a.diversityLoss;
}
