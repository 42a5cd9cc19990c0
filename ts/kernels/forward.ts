// The forward pass: z = x·(W+G)ᵀ + b, D = σ(z).
// W and G only ever act through their sum, so it is formed once per call (sumWeights), not
// once per sample. The GEMM works on blocks of 4 outputs × 2 rows: eight sums stay in
// registers, and each value of x and wsum loaded serves four or two multiply-adds (the naive
// triple loop loads three values per multiply-add).

/** wsum = w + g, elementwise over outputs × inputs. */
export function sumWeights(w: Float32Array, g: Float32Array, wsum: Float32Array, length: number): void {
  for (let i = 0; i < length; i++) wsum[i] = w[i] + g[i];
}

/**
 * z = x·wsumᵀ + b for `batch` rows of x (batch × inputs) against wsum (outputs × inputs).
 * Outputs outermost: a block of 4 rows of wsum stays in cache while every pair of rows of x
 * passes it (rows outermost would stream all of wsum once per pair: 8 MB each time at E).
 */
export function gemm(
  x: Float32Array,
  wsum: Float32Array,
  b: Float32Array,
  z: Float32Array,
  batch: number,
  inputs: number,
  outputs: number,
): void {
  const out4 = outputs - (outputs % 4),
    batch2 = batch - (batch % 2);
  let o = 0;
  for (; o < out4; o += 4) {
    const w0 = o * inputs,
      w1 = w0 + inputs,
      w2 = w1 + inputs,
      w3 = w2 + inputs;
    const b0 = b[o],
      b1 = b[o + 1],
      b2 = b[o + 2],
      b3 = b[o + 3];
    for (let n = 0; n < batch2; n += 2) {
      const x0 = n * inputs,
        x1 = x0 + inputs,
        z0 = n * outputs + o,
        z1 = z0 + outputs;
      let s00 = 0,
        s01 = 0,
        s02 = 0,
        s03 = 0,
        s10 = 0,
        s11 = 0,
        s12 = 0,
        s13 = 0;
      for (let i = 0; i < inputs; i++) {
        const a = x[x0 + i],
          c = x[x1 + i];
        const p = wsum[w0 + i],
          q = wsum[w1 + i],
          r = wsum[w2 + i],
          t = wsum[w3 + i];
        s00 += a * p;
        s01 += a * q;
        s02 += a * r;
        s03 += a * t;
        s10 += c * p;
        s11 += c * q;
        s12 += c * r;
        s13 += c * t;
      }
      z[z0] = s00 + b0;
      z[z0 + 1] = s01 + b1;
      z[z0 + 2] = s02 + b2;
      z[z0 + 3] = s03 + b3;
      z[z1] = s10 + b0;
      z[z1 + 1] = s11 + b1;
      z[z1 + 2] = s12 + b2;
      z[z1 + 3] = s13 + b3;
    }
    if (batch2 < batch) {
      const x0 = batch2 * inputs,
        z0 = batch2 * outputs + o;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let i = 0; i < inputs; i++) {
        const a = x[x0 + i];
        s0 += a * wsum[w0 + i];
        s1 += a * wsum[w1 + i];
        s2 += a * wsum[w2 + i];
        s3 += a * wsum[w3 + i];
      }
      z[z0] = s0 + b0;
      z[z0 + 1] = s1 + b1;
      z[z0 + 2] = s2 + b2;
      z[z0 + 3] = s3 + b3;
    }
  }
  for (; o < outputs; o++) {
    // The last outputs % 4: one output × 4 rows.
    const w0 = o * inputs,
      bo = b[o];
    let n = 0;
    for (; n + 4 <= batch; n += 4) {
      const x0 = n * inputs,
        x1 = x0 + inputs,
        x2 = x1 + inputs,
        x3 = x2 + inputs;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let i = 0; i < inputs; i++) {
        const p = wsum[w0 + i];
        s0 += x[x0 + i] * p;
        s1 += x[x1 + i] * p;
        s2 += x[x2 + i] * p;
        s3 += x[x3 + i] * p;
      }
      const z0 = n * outputs + o;
      z[z0] = s0 + bo;
      z[z0 + outputs] = s1 + bo;
      z[z0 + 2 * outputs] = s2 + bo;
      z[z0 + 3 * outputs] = s3 + bo;
    }
    for (; n < batch; n++) {
      const x0 = n * inputs;
      let s = 0;
      for (let i = 0; i < inputs; i++) s += x[x0 + i] * wsum[w0 + i];
      z[n * outputs + o] = s + bo;
    }
  }
}

/** d = σ(z) for `count` units, without overflow for any finite z. */
export function sigmoid(z: Float32Array, d: Float32Array, count: number): void {
  for (let k = 0; k < count; k++) {
    const zk = z[k];
    const e = Math.exp(-Math.abs(zk));
    d[k] = zk >= 0 ? 1 / (1 + e) : e / (1 + e);
  }
}

/** z = x·wsumᵀ + b and d = σ(z): gemm, then sigmoid. */
export function forward(
  x: Float32Array,
  wsum: Float32Array,
  b: Float32Array,
  z: Float32Array,
  d: Float32Array,
  batch: number,
  inputs: number,
  outputs: number,
): void {
  gemm(x, wsum, b, z, batch, inputs, outputs);
  sigmoid(z, d, batch * outputs);
}
