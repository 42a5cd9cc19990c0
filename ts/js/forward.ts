// The forward pass: z = x·(W+G)ᵀ + b, D = σ(z).
// W and G only ever act through their sum, so it is formed once per call (sumWeights),
// not once per sample.

/** wsum = w + g, elementwise over outputs × inputs. */
export function sumWeights(w: Float32Array, g: Float32Array, wsum: Float32Array, length: number): void {
  for (let i = 0; i < length; i++) wsum[i] = w[i] + g[i];
}

/**
 * z = x·wsumᵀ + b and d = σ(z), for `batch` rows of x (batch × inputs) against wsum
 * (outputs × inputs). Four outputs per pass over a row of x, so each x[i] is loaded once
 * for four multiply-adds.
 */
export function forward(
  x: Float32Array, wsum: Float32Array, b: Float32Array, z: Float32Array, d: Float32Array,
  batch: number, inputs: number, outputs: number,
): void {
  const out4 = outputs - (outputs % 4);
  for (let n = 0; n < batch; n++) {
    const xr = n * inputs;
    const zr = n * outputs;
    let o = 0;
    for (; o < out4; o += 4) {
      const w0 = o * inputs, w1 = w0 + inputs, w2 = w1 + inputs, w3 = w2 + inputs;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let i = 0; i < inputs; i++) {
        const xi = x[xr + i];
        s0 += xi * wsum[w0 + i];
        s1 += xi * wsum[w1 + i];
        s2 += xi * wsum[w2 + i];
        s3 += xi * wsum[w3 + i];
      }
      z[zr + o] = s0 + b[o];
      z[zr + o + 1] = s1 + b[o + 1];
      z[zr + o + 2] = s2 + b[o + 2];
      z[zr + o + 3] = s3 + b[o + 3];
    }
    for (; o < outputs; o++) {
      const w0 = o * inputs;
      let s = 0;
      for (let i = 0; i < inputs; i++) s += x[xr + i] * wsum[w0 + i];
      z[zr + o] = s + b[o];
    }
    for (let o2 = 0; o2 < outputs; o2++) {
      const zi = z[zr + o2];
      const e = Math.exp(-Math.abs(zi));
      d[zr + o2] = zi >= 0 ? 1 / (1 + e) : e / (1 + e);
    }
  }
}
