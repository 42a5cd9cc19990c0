// The oracle checked against itself in float64, before anything is compared with it: its δ and
// gradients against central differences of its loss, its entropy against quadrature and against
// the textbook definition, its SGD against a hand-computed step.
import { describe, expect, it } from "vitest";
import * as ref from "./reference";

describe("reference (float64) self-consistency", () => {
  it("entropy equals −D·log2 D − (1−D)·log2(1−D) and the quadrature", () => {
    for (const z of [-30, -5, -1, -0.1, 0, 0.3, 2, 7, 30]) {
      const D = ref.sigmoid(z);
      const textbook = -(D * Math.log2(D) + (1 - D) * Math.log2(1 - D));
      // The textbook form loses digits in 1 − D for large |z|; it is only a check in the middle.
      if (Math.abs(z) <= 7) expect(Math.abs(ref.entropyBits(z) - textbook)).toBeLessThan(1e-12);
      const q = -ref.simpson((t) => t * ref.sigmoidSlope(t), -60, z, 40000) / ref.LN2;
      expect(Math.abs(ref.entropyBits(z) - q)).toBeLessThan(1e-11);
    }
    expect(ref.entropyBits(0)).toBe(1);
    expect(ref.entropyBits(1e4)).toBe(0);
    expect(ref.entropyBits(-3e38)).toBe(0);
  });

  it("cross-entropy equals −y·log2 D − (1−y)·log2(1−D)", () => {
    for (const [z, y] of [
      [-3, 0.2],
      [0, 0.5],
      [1.5, 1],
      [4, 0],
      [-0.7, 0.9],
    ]) {
      const D = ref.sigmoid(z);
      const textbook = -(y * Math.log2(D) + (1 - y) * Math.log2(1 - D));
      expect(Math.abs(ref.crossEntropyBits(z, y) - textbook)).toBeLessThan(1e-12);
    }
  });

  it("δ and dW, dG, db are the derivatives of the loss (central differences)", () => {
    const rng = new ref.Rng(1);
    const p = {
      inputs: 3,
      outputs: 2,
      w: Array.from(rng.floats(6)),
      g: Array.from(rng.floats(6, -0.2, 0.2)),
      b: [0.3, -0.4],
    };
    const x = Array.from(rng.floats(12, -2, 2));
    const targets = Array.from(rng.floats(8, 0, 1));
    for (const reduction of ["mean", "sum"] as const)
      for (const objective of [{ entropy: 1 }, { crossEntropy: 1 }, { entropy: 0.3, crossEntropy: 2 }]) {
        const opts = { reduction, objective, targets };
        const e = ref.evaluate(p, x, opts);
        for (const k of ["w", "g", "b"] as const) {
          const grad = k === "b" ? e.db : e.dw;
          p[k].forEach((v, i) => {
            const h = 1e-6;
            const at = (s: number) => ref.lossOf({ ...p, [k]: p[k].map((u, j) => (j === i ? v + s * h : u)) }, x, opts);
            const fd = (at(1) - at(-1)) / (2 * h);
            expect(Math.abs(fd - grad[i]), `${reduction} ${JSON.stringify(objective)} d${k}[${i}]`).toBeLessThan(1e-8);
          });
        }
      }
  });

  it("SGD with momentum, nesterov and decay: two steps by hand", () => {
    // One parameter at a time: with x = [1] and one output, dW = δ(z) where z = w + g + b.
    const p = { inputs: 1, outputs: 1, w: [0.5], g: [0.1], b: [0.2] };
    const x = [1];
    const opt = new ref.ReferenceSGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 });
    const d1 = ref.unitDelta(0.8, 0, ref.weightsOf());
    opt.step(x);
    const u1 = d1 + 0.01 * 0.5; // w's first step: buf = u; nesterov u + μ·buf = 1.9·u
    const w1 = 0.5 - 0.1 * 1.9 * u1;
    expect(opt.p.w[0]).toBeCloseTo(w1, 15);
    const z2 = opt.p.w[0] + opt.p.g[0] + opt.p.b[0];
    opt.step(x);
    const u2 = ref.unitDelta(z2, 0, ref.weightsOf()) + 0.01 * w1;
    const buf2 = 0.9 * u1 + u2;
    expect(opt.p.w[0]).toBeCloseTo(w1 - 0.1 * (u2 + 0.9 * buf2), 15);
  });

  it("AdamW's first step is θ·(1 − lr·λ) − lr·g/(|g| + ε)", () => {
    const p = { inputs: 1, outputs: 1, w: [0.5], g: [0.1], b: [0.2] };
    const opt = new ref.ReferenceAdam(p, { lr: 0.01, weightDecay: 0.1, eps: 1e-8 });
    const g = ref.unitDelta(0.8, 0, ref.weightsOf());
    opt.step([1]);
    expect(opt.p.w[0]).toBeCloseTo(0.5 * (1 - 0.001) - (0.01 * g) / (Math.abs(g) + 1e-8), 15);
    expect(opt.p.b[0]).toBeCloseTo(0.2 * (1 - 0.001) - (0.01 * g) / (Math.abs(g) + 1e-8), 15);
  });
});
