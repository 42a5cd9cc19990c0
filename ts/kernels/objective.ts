// The weighted objective and its derivative δ = ∂loss/∂z, per unit.
//
// loss = αE·H + αC·CE, both in bits:
//   H·ln2  = log1p(e) + a·e/(1+e)            (a = |z|, e = exp(-a); see entropy.ts)
//   CE·ln2 = softplus(z) - y·z = max(z, 0) + log1p(e) - y·z
//   δ = scale · (αE·(-(1/ln2)·z·D(1-D)) + αC·(D - y)/ln2),  D(1-D) = e/(1+e)²
// scale is 1/batch for the mean reduction and 1 for sum and none.

import { Status } from "../core/abi.js";
import { expNeg } from "./math.js";

/** The loss's coefficients: αE, αC, and scale (1/batch for the mean, else 1). */
export interface LossCoefficients {
  entropyWeight: number;
  crossEntropyWeight: number;
  scale: number;
}

/**
 * Writes d = σ(z) and fills delta (and, when given, each unit's entropy and loss) for
 * `count` units, and writes scale·Σloss and scale·Σentropy to totals[0], totals[1]. One
 * exp(-|z|) serves σ, H and δ. Returns a status: targets
 * are checked whenever the cross-entropy weight is not 0, and a non-finite z is reported as
 * NonFiniteResult (the driver then tells whether x was the cause).
 */
export function objective(
  z: Float32Array,
  d: Float32Array,
  targets: Float32Array | null,
  coefficients: LossCoefficients,
  delta: Float32Array,
  unitEntropy: Float32Array | null,
  unitLoss: Float32Array | null,
  count: number,
  totals: Float64Array,
): number {
  const ew = coefficients.entropyWeight,
    cw = coefficients.crossEntropyWeight,
    scale = coefficients.scale;
  const useTargets = cw !== 0;
  const inv = 1 / Math.LN2;
  let lossSum = 0,
    entropySum = 0,
    zCheck = 0;
  for (let k = 0; k < count; k++) {
    const zk = z[k];
    zCheck += zk * 0; // stays 0 unless some z is NaN or ±Infinity
    const a = Math.abs(zk);
    const e = expNeg(a);
    const s = 1 / (1 + e);
    const l1p = Math.log1p(e);
    const h = Math.min(1, (l1p + a * e * s) * inv); // ≤ 1 bit, as the kernels (NaN kept)
    const dk = zk >= 0 ? s : e * s;
    d[k] = dk;
    let loss = ew * h;
    let dz = ew * (-zk * e * s * s * inv);
    if (useTargets) {
      const y = (targets as Float32Array)[k];
      if (!(y >= 0 && y <= 1)) return Number.isFinite(y) ? Status.TargetOutOfRange : Status.NonFiniteTarget;
      loss += cw * (Math.max(zk, 0) + l1p - y * zk) * inv;
      dz += cw * (dk - y) * inv;
    }
    delta[k] = scale * dz;
    if (unitEntropy !== null) unitEntropy[k] = h;
    if (unitLoss !== null) unitLoss[k] = loss;
    lossSum += loss;
    entropySum += h;
  }
  totals[0] = scale * lossSum;
  totals[1] = scale * entropySum;
  return zCheck === 0 && Number.isFinite(lossSum) ? Status.Ok : Status.NonFiniteResult;
}
