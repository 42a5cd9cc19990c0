// Gradient-norm clipping inside the fused step, as torch.nn.utils.clip_grad_norm_, mirroring
// crate/src/clip.rs: norm over the updated parameters (|dw|² once per updated w or g, |db|²
// when b is updated), coef = min(max / (norm + 1e-6), 1), gradients scaled in place.

/** Σ vᵢ² in float64, in index order (as clip::sum_squares). */
export function sumSquares(v: Float32Array, length: number): number {
  let s = 0;
  for (let i = 0; i < length; i++) s += v[i] * v[i];
  return s;
}

/** min(max / (norm + 1e-6), 1) rounded to f32, or NaN when norm is not finite. */
export function clipCoefficient(norm: number, maxNorm: number): number {
  if (!Number.isFinite(norm)) return NaN;
  return Math.fround(Math.min(Math.fround(maxNorm) / (norm + 1e-6), 1));
}

/** v ← c·v (float32). */
export function scale(v: Float32Array, length: number, c: number): void {
  for (let i = 0; i < length; i++) v[i] = Math.fround(v[i] * c);
}
