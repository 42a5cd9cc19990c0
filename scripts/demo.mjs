// npm start: train a small layer on a built-in synthetic problem with every backend and
// print the entropy per epoch, steps per second and the backend.
//
// The data: 4096 points in 32 dimensions drawn around 8 random centres. Minimizing the
// entropy pushes every unit's σ(z) away from 1/2, i.e. the layer learns confident, stable
// features of the clusters without labels.

import { init, Model, SGD, backend } from "../dist/index.js";

const INPUTS = 32, OUTPUTS = 8, SAMPLES = 4096, BATCH = 64, EPOCHS = 5, SEED = 7;

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 1 | s) + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 7), 61 | s) ^ s;
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  };
}

function dataset() {
  const rand = rng(SEED);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const centres = Array.from({ length: 8 }, () => Float32Array.from({ length: INPUTS }, () => 2 * gauss()));
  const x = new Float32Array(SAMPLES * INPUTS);
  for (let n = 0; n < SAMPLES; n++) {
    const c = centres[n % centres.length];
    for (let i = 0; i < INPUTS; i++) x[n * INPUTS + i] = c[i] + 0.5 * gauss();
  }
  return x;
}

const best = await init();
console.log(`entrograd demo: ${SAMPLES} samples, ${INPUTS} → ${OUTPUTS}, batch ${BATCH}; default backend ${best} (${backend()})\n`);
const x = dataset();
const batches = SAMPLES / BATCH;

for (const name of ["wasm-simd", "wasm", "js"]) {
  let m;
  try {
    m = new Model({ inputs: INPUTS, outputs: OUTPUTS, seed: SEED, backend: name });
  } catch (e) {
    console.log(`${name}: not available here (${e.message})\n`);
    continue;
  }
  const opt = new SGD(m, { lr: 0.5, momentum: 0.9 });
  const line = [`${name.padEnd(9)} H(bits/sample):`, m.entropy(x).toFixed(4)];
  const start = performance.now();
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    const staged = m.input(BATCH);
    for (let k = 0; k < batches; k++) {
      staged.set(x.subarray(k * BATCH * INPUTS, (k + 1) * BATCH * INPUTS));
      opt.step(staged);
    }
    line.push(m.entropy(x).toFixed(4));
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(line.join(" → "));
  console.log(`${"".padEnd(9)} ${(EPOCHS * batches / seconds).toFixed(0)} steps/s (including the per-epoch entropy of all ${SAMPLES} samples)\n`);
  m.dispose();
}
