// Gradients of the loss: dW = dG = δᵀ·x (one matrix serves both, since W and G act only
// through their sum) and db = Σ over the batch of δ.

/** dw = δᵀ·x: outputs × inputs, from δ (batch × outputs) and x (batch × inputs). */
export function weightGradient(
  delta: Float32Array, x: Float32Array, dw: Float32Array,
  batch: number, inputs: number, outputs: number,
): void {
  dw.fill(0, 0, outputs * inputs);
  const out4 = outputs - (outputs % 4);
  for (let n = 0; n < batch; n++) {
    const xr = n * inputs;
    const dr = n * outputs;
    let o = 0;
    // Four rows of dw per pass over a row of x: each x[i] is loaded once for four updates.
    for (; o < out4; o += 4) {
      const d0 = delta[dr + o], d1 = delta[dr + o + 1], d2 = delta[dr + o + 2], d3 = delta[dr + o + 3];
      const r0 = o * inputs, r1 = r0 + inputs, r2 = r1 + inputs, r3 = r2 + inputs;
      for (let i = 0; i < inputs; i++) {
        const xi = x[xr + i];
        dw[r0 + i] += d0 * xi;
        dw[r1 + i] += d1 * xi;
        dw[r2 + i] += d2 * xi;
        dw[r3 + i] += d3 * xi;
      }
    }
    for (; o < outputs; o++) {
      const dn = delta[dr + o];
      const r = o * inputs;
      for (let i = 0; i < inputs; i++) dw[r + i] += dn * x[xr + i];
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
