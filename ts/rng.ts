// Seeded initialisation. Everything random happens here, in TypeScript, so the same seed
// gives the same parameters on every backend.

/** splitmix32: small, fast, and good enough to initialise weights. */
export function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
    t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
    return ((t ^ (t >>> 15)) >>> 0) / 4294967296; // [0, 1)
  };
}

export type InitName = "xavier" | "uniform" | "normal" | "zeros";

/**
 * Fills w (outputs × inputs):
 * - xavier: U(±√(6/(in+out))) (Glorot uniform), the default;
 * - uniform: U(±1/√in) (torch.nn.Linear's default bound);
 * - normal: N(0, 2/(in+out)) (Glorot normal);
 * - zeros: 0. Note that the entropy gradient is exactly 0 at z = 0: an all-zero model never
 *   moves under the entropy objective alone.
 */
export function initWeights(w: Float32Array, kind: InitName, seed: number, inputs: number, outputs: number): void {
  const rand = splitmix32(seed);
  const n = inputs * outputs;
  if (kind === "zeros") {
    w.fill(0, 0, n);
  } else if (kind === "normal") {
    const std = Math.sqrt(2 / (inputs + outputs));
    for (let i = 0; i < n; i += 2) {
      // Box–Muller: two normals from two uniforms; 1 - u keeps the logarithm finite.
      const r = Math.sqrt(-2 * Math.log(1 - rand()));
      const t = 2 * Math.PI * rand();
      w[i] = std * r * Math.cos(t);
      if (i + 1 < n) w[i + 1] = std * r * Math.sin(t);
    }
  } else {
    const bound = kind === "xavier" ? Math.sqrt(6 / (inputs + outputs)) : 1 / Math.sqrt(inputs);
    for (let i = 0; i < n; i++) w[i] = bound * (2 * rand() - 1);
  }
}
