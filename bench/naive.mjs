// The naive baseline: one training step written the way it reads on paper, plain loops over
// Float32Array, no blocking. It is what the JS fallback (ts/kernels/) is measured against.
//
//   z = x·(W+G)ᵀ + b,  D = σ(z),  H = per-unit binary entropy of D in bits, loss = mean over
//   the batch of Σ_outputs H,  δ = ∂loss/∂z,  dW = dG = δᵀ·x,  db = Σₙ δ,  θ ← θ − lr·∂loss/∂θ

/**
 * A layer's state for the naive step.
 * @param {number} inputs
 * @param {number} outputs
 * @param {number} batch
 * @param {ArrayLike<number>} w
 * @param {ArrayLike<number>} g
 * @param {ArrayLike<number>} b
 */
export function naiveLayer(inputs, outputs, batch, w, g, b) {
  return {
    inputs,
    outputs,
    batch,
    w: Float32Array.from(w),
    g: Float32Array.from(g),
    b: Float32Array.from(b),
    z: new Float32Array(batch * outputs),
    d: new Float32Array(batch * outputs),
    delta: new Float32Array(batch * outputs),
    dw: new Float32Array(inputs * outputs),
    db: new Float32Array(outputs),
  };
}

/**
 * One SGD step on the mean entropy; returns the entropy (bits) before the update.
 * @param {ReturnType<typeof naiveLayer>} p
 * @param {Float32Array} x
 * @param {number} lr
 */
export function naiveStep(p, x, lr) {
  const { inputs, outputs, batch, w, g, b, z, d, delta, dw, db } = p;
  // Forward.
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < outputs; o++) {
      let s = b[o];
      for (let i = 0; i < inputs; i++) s += x[n * inputs + i] * (w[o * inputs + i] + g[o * inputs + i]);
      z[n * outputs + o] = s;
      d[n * outputs + o] = 1 / (1 + Math.exp(-s));
    }
  }
  // Entropy and δ.
  let h = 0;
  for (let k = 0; k < batch * outputs; k++) {
    const a = Math.abs(z[k]),
      e = Math.exp(-a);
    h += (Math.log1p(e) + (a * e) / (1 + e)) / Math.LN2;
    delta[k] = (-z[k] * d[k] * (1 - d[k])) / Math.LN2 / batch;
  }
  // Gradients.
  dw.fill(0);
  db.fill(0);
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < outputs; o++) {
      const dl = delta[n * outputs + o];
      db[o] += dl;
      for (let i = 0; i < inputs; i++) dw[o * inputs + i] += dl * x[n * inputs + i];
    }
  }
  // Update.
  for (let j = 0; j < inputs * outputs; j++) {
    w[j] -= lr * dw[j];
    g[j] -= lr * dw[j];
  }
  for (let o = 0; o < outputs; o++) b[o] -= lr * db[o];
  return h / batch;
}
