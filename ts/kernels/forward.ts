// The forward pass: z = x·(W+G)ᵀ + b, D = σ(z).
// W and G only ever act through their sum, so it is formed once per call (sumWeights), not
// once per sample. The GEMM works on blocks of 3 outputs × 3 rows: nine sums stay in
// registers, and each value of x and wsum loaded serves three multiply-adds (the naive triple
// loop loads three values per multiply-add). The sums run in float64, each rounded once
// to float32 (the core sums in float32, four lanes per element).

import { expNeg } from "./math.js";

/** wsum = w + g, elementwise over outputs × inputs (the mirror of the core's pack_weights,
 * without its padding). Returns max |w| and max |g| in `max[0]`, `max[1]` (NaN when either
 * holds a NaN): the step bounds its update with them. */
export function sumWeights(
  w: Float32Array,
  g: Float32Array,
  wsum: Float32Array,
  length: number,
  max: Float64Array,
): void {
  let mw = 0,
    mg = 0;
  for (let i = 0; i < length; i++) {
    const u = w[i],
      v = g[i];
    wsum[i] = u + v;
    mw = Math.max(mw, Math.abs(u)); // Math.max keeps NaN, and ∞ stays ∞
    mg = Math.max(mg, Math.abs(v));
  }
  max[0] = mw;
  max[1] = mg;
}

/**
 * z = x·wsumᵀ + b for `batch` rows of x (batch × inputs) against wsum (outputs × inputs), in
 * blocks of 3 outputs × 3 rows: nine sums in registers, each value loaded serving three
 * multiply-adds (measured faster than 4 × 2 at every size; 4 × 4 runs out of V8's registers).
 * Outputs outermost: a block of rows of wsum stays in cache while every row of x passes it (rows
 * outermost would stream all of wsum once per block: 8 MB each time at size E).
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
  const out3 = outputs - (outputs % 3),
    batch3 = batch - (batch % 3);
  let o = 0;
  for (; o < out3; o += 3) {
    const w0 = o * inputs,
      w1 = w0 + inputs,
      w2 = w1 + inputs;
    const b0 = b[o],
      b1 = b[o + 1],
      b2 = b[o + 2];
    let n = 0;
    for (; n < batch3; n += 3) {
      const x0 = n * inputs,
        x1 = x0 + inputs,
        x2 = x1 + inputs;
      let s00 = 0,
        s01 = 0,
        s02 = 0,
        s10 = 0,
        s11 = 0,
        s12 = 0,
        s20 = 0,
        s21 = 0,
        s22 = 0;
      for (let i = 0; i < inputs; i++) {
        const p = wsum[w0 + i],
          q = wsum[w1 + i],
          r = wsum[w2 + i];
        const a = x[x0 + i];
        s00 += a * p;
        s01 += a * q;
        s02 += a * r;
        const c = x[x1 + i];
        s10 += c * p;
        s11 += c * q;
        s12 += c * r;
        const e = x[x2 + i];
        s20 += e * p;
        s21 += e * q;
        s22 += e * r;
      }
      const z0 = n * outputs + o,
        z1 = z0 + outputs,
        z2 = z1 + outputs;
      z[z0] = s00 + b0;
      z[z0 + 1] = s01 + b1;
      z[z0 + 2] = s02 + b2;
      z[z1] = s10 + b0;
      z[z1 + 1] = s11 + b1;
      z[z1 + 2] = s12 + b2;
      z[z2] = s20 + b0;
      z[z2 + 1] = s21 + b1;
      z[z2 + 2] = s22 + b2;
    }
    for (; n < batch; n++) {
      // The last batch % 3 rows: 3 outputs × 1 row.
      const x0 = n * inputs;
      let s0 = 0,
        s1 = 0,
        s2 = 0;
      for (let i = 0; i < inputs; i++) {
        const a = x[x0 + i];
        s0 += a * wsum[w0 + i];
        s1 += a * wsum[w1 + i];
        s2 += a * wsum[w2 + i];
      }
      const z0 = n * outputs + o;
      z[z0] = s0 + b0;
      z[z0 + 1] = s1 + b1;
      z[z0 + 2] = s2 + b2;
    }
  }
  for (; o < outputs; o++) {
    // The last outputs % 3: one output × 6 rows (six sums), then row by row.
    const w0 = o * inputs,
      bo = b[o];
    let n = 0;
    for (; n + 6 <= batch; n += 6) {
      const x0 = n * inputs;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0,
        s4 = 0,
        s5 = 0;
      for (let i = 0; i < inputs; i++) {
        const p = wsum[w0 + i];
        s0 += x[x0 + i] * p;
        s1 += x[x0 + inputs + i] * p;
        s2 += x[x0 + 2 * inputs + i] * p;
        s3 += x[x0 + 3 * inputs + i] * p;
        s4 += x[x0 + 4 * inputs + i] * p;
        s5 += x[x0 + 5 * inputs + i] * p;
      }
      const z0 = n * outputs + o;
      z[z0] = s0 + bo;
      z[z0 + outputs] = s1 + bo;
      z[z0 + 2 * outputs] = s2 + bo;
      z[z0 + 3 * outputs] = s3 + bo;
      z[z0 + 4 * outputs] = s4 + bo;
      z[z0 + 5 * outputs] = s5 + bo;
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
    const e = expNeg(Math.abs(zk));
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
