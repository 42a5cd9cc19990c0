// Gradients of the loss: dW = dG = δᵀ·x (one matrix serves both, since W and G act only
// through their sum) and db = Σ over the batch of δ. The mirror of crate/src/gradients: δ in
// pairs of outputs (packDelta, with |δ| < 2⁻¹⁰⁰ read as 0, as in the core's pack::pack_delta).
// Differences: x is read in place (the core's strips of 16 inputs, for strides that thrash its
// cache, gain nothing for these float64 blocks), and the sums run in float64, one rounding per
// element of dw (the core sums in float32, in the same order over the batch).

/** |δ| below this is 0 in the pairs (the core's `pack::DELTA_FLUSH`, 2⁻¹⁰⁰). */
export const DELTA_FLUSH = 2 ** -100;

/** pairs ← δ in pairs of outputs: block p holds δ[n][2p + j] at 2p·batch + n·w + j (w = 2, or 1
 * for the last block of an odd count), with |δ| < DELTA_FLUSH as 0. */
export function packDelta(delta: Float32Array, pairs: Float32Array, batch: number, outputs: number): void {
  const full = outputs >> 1;
  for (let n = 0; n < batch; n++) {
    const row = n * outputs;
    for (let p = 0; p < full; p++) {
      const at = 2 * (p * batch + n);
      const u = delta[row + 2 * p],
        v = delta[row + 2 * p + 1];
      pairs[at] = Math.abs(u) < DELTA_FLUSH ? 0 : u;
      pairs[at + 1] = Math.abs(v) < DELTA_FLUSH ? 0 : v;
    }
    if (outputs % 2 === 1) {
      const u = delta[row + outputs - 1];
      pairs[2 * full * batch + n] = Math.abs(u) < DELTA_FLUSH ? 0 : u;
    }
  }
}

/**
 * dw = δᵀ·x: outputs × inputs, from δ in pairs (packDelta) and x (batch × inputs). Blocks of
 * 2 outputs × 6 inputs walk the batch (twelve sums in registers; each value loaded serves six or
 * two multiply-adds; measured faster than 2 × 4 at every size), inputs outermost, so a column
 * block of x stays in cache while every pair of outputs passes it. Returns the largest |dw| (NaN
 * or ∞ when a value is not finite), as the core's kernel does.
 */
export function weightGradient(
  pairs: Float32Array,
  x: Float32Array,
  dw: Float32Array,
  batch: number,
  inputs: number,
  outputs: number,
): number {
  const in6 = inputs - (inputs % 6),
    out2 = outputs - (outputs % 2);
  let max = 0,
    bad = 0;
  for (let i = 0; i < in6; i += 6) {
    for (let o = 0; o < out2; o += 2) {
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0,
        a4 = 0,
        a5 = 0,
        c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0,
        c4 = 0,
        c5 = 0;
      for (let n = 0, xr = i, dr = o * batch; n < batch; n++, xr += inputs, dr += 2) {
        const d0 = pairs[dr],
          d1 = pairs[dr + 1];
        const p = x[xr],
          q = x[xr + 1],
          r = x[xr + 2],
          t = x[xr + 3],
          u = x[xr + 4],
          v = x[xr + 5];
        a0 += d0 * p;
        a1 += d0 * q;
        a2 += d0 * r;
        a3 += d0 * t;
        a4 += d0 * u;
        a5 += d0 * v;
        c0 += d1 * p;
        c1 += d1 * q;
        c2 += d1 * r;
        c3 += d1 * t;
        c4 += d1 * u;
        c5 += d1 * v;
      }
      const r0 = o * inputs + i,
        r1 = r0 + inputs;
      dw[r0] = a0;
      dw[r0 + 1] = a1;
      dw[r0 + 2] = a2;
      dw[r0 + 3] = a3;
      dw[r0 + 4] = a4;
      dw[r0 + 5] = a5;
      dw[r1] = c0;
      dw[r1 + 1] = c1;
      dw[r1 + 2] = c2;
      dw[r1 + 3] = c3;
      dw[r1 + 4] = c4;
      dw[r1 + 5] = c5;
      // x·0 is NaN exactly when x is not finite (a finite double sum beyond float32 is stored
      // as ∞).
      for (let k = 0; k < 6; k++) bad += dw[r0 + k] * 0 + dw[r1 + k] * 0;
      max = Math.max(max, Math.abs(a0), Math.abs(a1), Math.abs(a2), Math.abs(a3), Math.abs(a4), Math.abs(a5));
      max = Math.max(max, Math.abs(c0), Math.abs(c1), Math.abs(c2), Math.abs(c3), Math.abs(c4), Math.abs(c5));
    }
  }
  // Inputs past the last 6: pairs of outputs × 4 inputs, then single columns.
  let i0 = in6;
  if (inputs - i0 >= 4) {
    for (let o = 0; o < out2; o += 2) {
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0,
        c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0;
      for (let n = 0, xr = i0, dr = o * batch; n < batch; n++, xr += inputs, dr += 2) {
        const d0 = pairs[dr],
          d1 = pairs[dr + 1];
        const p = x[xr],
          q = x[xr + 1],
          r = x[xr + 2],
          t = x[xr + 3];
        a0 += d0 * p;
        a1 += d0 * q;
        a2 += d0 * r;
        a3 += d0 * t;
        c0 += d1 * p;
        c1 += d1 * q;
        c2 += d1 * r;
        c3 += d1 * t;
      }
      const r0 = o * inputs + i0,
        r1 = r0 + inputs;
      dw[r0] = a0;
      dw[r0 + 1] = a1;
      dw[r0 + 2] = a2;
      dw[r0 + 3] = a3;
      dw[r1] = c0;
      dw[r1 + 1] = c1;
      dw[r1 + 2] = c2;
      dw[r1 + 3] = c3;
      for (let k = 0; k < 4; k++) bad += dw[r0 + k] * 0 + dw[r1 + k] * 0;
      max = Math.max(max, Math.abs(a0), Math.abs(a1), Math.abs(a2), Math.abs(a3));
      max = Math.max(max, Math.abs(c0), Math.abs(c1), Math.abs(c2), Math.abs(c3));
    }
    i0 += 4;
  }
  // The rest one element at a time: outputs past the last pair (every input), the last columns.
  for (let o = 0; o < outputs; o++) {
    const first = o - (o % 2),
      w = first + 2 <= outputs ? 2 : 1;
    for (let i = o < out2 ? i0 : 0; i < inputs; i++) {
      let s = 0;
      for (let n = 0; n < batch; n++) s += pairs[first * batch + n * w + (o - first)] * x[n * inputs + i];
      dw[o * inputs + i] = s;
      bad += dw[o * inputs + i] * 0;
      max = Math.max(max, Math.abs(s));
    }
  }
  return bad === 0 ? Math.fround(max) : Number.NaN;
}

/** db = Σₙ δ[n]: outputs. Returns the largest |db| (NaN or ∞ when one is not finite). */
export function biasGradient(delta: Float32Array, db: Float32Array, batch: number, outputs: number): number {
  let max = 0,
    bad = 0;
  for (let o = 0; o < outputs; o++) {
    let s = 0;
    for (let n = 0; n < batch; n++) s += delta[n * outputs + o];
    db[o] = s;
    bad += db[o] * 0;
    max = Math.max(max, Math.abs(s));
  }
  return bad === 0 ? Math.fround(max) : Number.NaN;
}
