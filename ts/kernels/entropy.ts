// Per-unit entropy of the seed's objective, in bits.
//
// H = -(1/ln2) ∫_{-∞}^{z} t dσ(t) = (softplus(z) - z·σ(z)) / ln2, the binary entropy of σ(z).
// Written with a = |z| and e = exp(-a) ∈ (0, 1] so nothing overflows for any finite z:
//   H·ln2 = log1p(e) + a·e/(1+e)
// z = 0 gives log1p(1)/ln2 = 1 bit exactly; |z| = 1e4 gives e = 0 and H = 0. Next to z = 0
// the roundings can give 1 + 1 ulp: H is capped at 1 bit (Math.min keeps NaN), as the kernels do.

export function entropyBits(z: number): number {
  const a = Math.abs(z);
  if (a === Infinity) return 0; // the limit: a saturated unit carries no entropy (a·e would be ∞·0)
  const e = Math.exp(-a);
  return Math.min(1, (Math.log1p(e) + (a * e) / (1 + e)) / Math.LN2);
}

/** σ(z), without overflow for any finite z. */
export function sigmoid(z: number): number {
  const e = Math.exp(-Math.abs(z));
  return z >= 0 ? 1 / (1 + e) : e / (1 + e);
}
