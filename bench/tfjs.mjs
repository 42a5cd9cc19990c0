// TensorFlow.js 4.22 as a peer: the same training step (mean entropy of σ(x·(W+G)ᵀ + b), plain
// SGD on W, G and b, loss read back) on its WebAssembly backend, written two ways.
//
// * "minimize": as a user writes it: variables, a loss function, optimizer.minimize (autodiff).
// * "tuned": the best hand-written form found: the gradient written out (δ = ∂loss/∂z in
//   closed form, dW = δᵀ·x), parameters kept as inputs × outputs (TensorFlow's own layout), and
//   every matMul without transpose flags (explicit tf.transpose instead): with a flag the wasm
//   backend leaves XNNPACK for a scalar loop (measured on this machine).

import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const LN2 = Math.LN2;

/** @typedef {typeof import("@tensorflow/tfjs")} Tf */
/**
 * A peer's layer: shape, parameters in entrograd's layout (W and G outputs × inputs), step size.
 * @typedef {{ inputs: number; outputs: number; batch: number; w: Float32Array; g: Float32Array; b: Float32Array; lr: number }} PeerLayer
 */
/** @typedef {{ step(x: Float32Array): number; dispose(): void }} PeerStep */

/** Loads tfjs with its wasm backend; returns { tf, binary } or throws. */
export async function loadTfjs() {
  const require = createRequire(import.meta.url);
  // Importing @tensorflow/tfjs in Node prints a tip about tfjs-node: keep the bench's output clean.
  const warn = console.warn,
    log = console.log;
  console.warn = console.log = () => {};
  let tf, wasm;
  try {
    tf = await import("@tensorflow/tfjs");
    wasm = await import("@tensorflow/tfjs-backend-wasm");
  } finally {
    console.warn = warn;
    console.log = log;
  }
  const dist = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm"));
  wasm.setWasmPaths(`${dist}/`);
  if (!(await tf.setBackend("wasm"))) throw new Error("tfjs: the wasm backend did not initialise");
  await tf.ready();
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  const threads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT");
  // The file tfjs-backend-wasm picks by these two flags (getPathToWasmBinary in its source).
  const file =
    simd && threads
      ? "tfjs-backend-wasm-threaded-simd.wasm"
      : simd
        ? "tfjs-backend-wasm-simd.wasm"
        : "tfjs-backend-wasm.wasm";
  return { tf, binary: { simd, threads, file: join(dist, file) }, version: tf.version.tfjs };
}

/**
 * W (outputs × inputs) as TensorFlow's inputs × outputs kernel.
 * @param {Float32Array} w
 * @param {number} inputs
 * @param {number} outputs
 */
function transposed(w, inputs, outputs) {
  const t = new Float32Array(inputs * outputs);
  for (let o = 0; o < outputs; o++) for (let i = 0; i < inputs; i++) t[i * outputs + o] = w[o * inputs + i];
  return t;
}

/**
 * The idiomatic step: optimizer.minimize on the entropy loss (the stable form
 * H·ln2 = softplus(z) − z·σ(z)). `x` is fresh data each step, as in training.
 * @param {Tf} tf
 * @param {PeerLayer} layer
 * @returns {PeerStep}
 */
export function minimizeStep(tf, { inputs, outputs, batch, w, g, b, lr }) {
  const W = tf.variable(tf.tensor2d(w, [outputs, inputs]));
  const G = tf.variable(tf.tensor2d(g, [outputs, inputs]));
  const B = tf.variable(tf.tensor1d(b));
  const opt = tf.train.sgd(lr);
  const loss = (/** @type {import("@tensorflow/tfjs").Tensor2D} */ X) => () => {
    const z = tf.add(tf.matMul(X, tf.add(W, G), false, true), B);
    const h = tf.div(tf.sub(tf.softplus(z), tf.mul(z, tf.sigmoid(z))), LN2);
    return /** @type {import("@tensorflow/tfjs").Scalar} */ (tf.mean(tf.sum(h, 1)));
  };
  return {
    step(x) {
      const X = tf.tensor2d(x, [batch, inputs]);
      const cost = opt.minimize(loss(X), true, [W, G, B]);
      if (cost === null) throw new Error("tfjs: minimize returned no cost");
      const value = cost.dataSync()[0];
      cost.dispose();
      X.dispose();
      return value;
    },
    dispose() {
      W.dispose();
      G.dispose();
      B.dispose();
      opt.dispose();
    },
  };
}

/**
 * The hand-tuned step: explicit gradient, no transpose flags, one fused tidy per step.
 * @param {Tf} tf
 * @param {PeerLayer} layer
 * @returns {PeerStep}
 */
export function tunedStep(tf, { inputs, outputs, batch, w, g, b, lr }) {
  const W = tf.variable(tf.tensor2d(transposed(w, inputs, outputs), [inputs, outputs]));
  const G = tf.variable(tf.tensor2d(transposed(g, inputs, outputs), [inputs, outputs]));
  const B = tf.variable(tf.tensor1d(b));
  const k = -1 / LN2 / batch;
  return {
    step(x) {
      const h = tf.tidy(() => {
        const X = tf.tensor2d(x, [batch, inputs]);
        const z = tf.add(tf.matMul(X, tf.add(W, G)), B);
        const d = tf.sigmoid(z);
        const zd = tf.mul(z, d);
        const h = tf.div(tf.sum(tf.sub(tf.softplus(z), zd)), LN2 * batch);
        // δ = −(1/ln2)·z·σ(1−σ)/batch
        const delta = tf.mul(tf.sub(zd, tf.mul(zd, d)), k);
        const dW = tf.matMul(tf.transpose(X), delta);
        const step = tf.mul(dW, lr);
        W.assign(tf.sub(W, step));
        G.assign(tf.sub(G, step));
        B.assign(tf.sub(B, tf.mul(tf.sum(delta, 0), lr)));
        return h;
      });
      const value = h.dataSync()[0];
      h.dispose();
      return value;
    },
    dispose() {
      W.dispose();
      G.dispose();
      B.dispose();
    },
  };
}
