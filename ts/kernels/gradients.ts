// Gradients of the loss: dW = dG = δᵀ·x (one matrix serves both, since W and G act only
// through their sum) and db = Σ over the batch of δ.

/**
 * dw = δᵀ·x: outputs × inputs, from δ (batch × outputs) and x (batch × inputs).
 *
 * δ and x are first transposed into `scratch` (at least batch × (inputs + outputs) floats), so
 * each element of dw is a dot product of two contiguous rows, computed in blocks of 2 outputs ×
 * 4 inputs (eight sums in registers; each value loaded serves four or two multiply-adds).
 */
export function weightGradient(
  delta: Float32Array,
  x: Float32Array,
  dw: Float32Array,
  batch: number,
  inputs: number,
  outputs: number,
  scratch: Float32Array,
): void {
  // xT: inputs × batch, then dT: outputs × batch.
  const xT = scratch,
    dT0 = inputs * batch;
  for (let n = 0; n < batch; n++) {
    const xr = n * inputs,
      dr = n * outputs;
    for (let i = 0; i < inputs; i++) xT[i * batch + n] = x[xr + i];
    for (let o = 0; o < outputs; o++) xT[dT0 + o * batch + n] = delta[dr + o];
  }
  const in4 = inputs - (inputs % 4);
  let o = 0;
  for (; o + 2 <= outputs; o += 2) {
    const a0 = dT0 + o * batch,
      a1 = a0 + batch,
      r0 = o * inputs,
      r1 = r0 + inputs;
    let i = 0;
    for (; i < in4; i += 4) {
      const b0 = i * batch,
        b1 = b0 + batch,
        b2 = b1 + batch,
        b3 = b2 + batch;
      let s00 = 0,
        s01 = 0,
        s02 = 0,
        s03 = 0,
        s10 = 0,
        s11 = 0,
        s12 = 0,
        s13 = 0;
      for (let n = 0; n < batch; n++) {
        const d0 = xT[a0 + n],
          d1 = xT[a1 + n];
        const p = xT[b0 + n],
          q = xT[b1 + n],
          r = xT[b2 + n],
          t = xT[b3 + n];
        s00 += d0 * p;
        s01 += d0 * q;
        s02 += d0 * r;
        s03 += d0 * t;
        s10 += d1 * p;
        s11 += d1 * q;
        s12 += d1 * r;
        s13 += d1 * t;
      }
      dw[r0 + i] = s00;
      dw[r0 + i + 1] = s01;
      dw[r0 + i + 2] = s02;
      dw[r0 + i + 3] = s03;
      dw[r1 + i] = s10;
      dw[r1 + i + 1] = s11;
      dw[r1 + i + 2] = s12;
      dw[r1 + i + 3] = s13;
    }
    for (; i < inputs; i++) {
      const b0 = i * batch;
      let s0 = 0,
        s1 = 0;
      for (let n = 0; n < batch; n++) {
        s0 += xT[a0 + n] * xT[b0 + n];
        s1 += xT[a1 + n] * xT[b0 + n];
      }
      dw[r0 + i] = s0;
      dw[r1 + i] = s1;
    }
  }
  for (; o < outputs; o++) {
    const a0 = dT0 + o * batch,
      r0 = o * inputs;
    for (let i = 0; i < inputs; i++) {
      const b0 = i * batch;
      let s = 0;
      for (let n = 0; n < batch; n++) s += xT[a0 + n] * xT[b0 + n];
      dw[r0 + i] = s;
    }
  }
}

/** db = Σₙ δ[n]: outputs. */
export function biasGradient(delta: Float32Array, db: Float32Array, batch: number, outputs: number): void {
  for (let o = 0; o < outputs; o++) {
    let s = 0;
    for (let n = 0; n < batch; n++) s += delta[n * outputs + o];
    db[o] = s;
  }
}
