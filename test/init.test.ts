// Initialisation: the distributions the decisions name, the default seed 0, determinism.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model } from "entrograd";
import { BACKENDS, bits } from "./helpers";

beforeAll(async () => {
  await init();
});

const IN = 40;
const OUT = 60; // 2400 weights: sample statistics are tight enough for 5-sigma bounds
const N = IN * OUT;

function stats(w: Float32Array) {
  const a = Array.from(w);
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
  const max = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return { mean, std, max, a };
}

describe.each(BACKENDS)("init on %s", (backend) => {
  it("xavier = U(±√(6/(in+out))): bounded, centred, right spread; g = b = 0", () => {
    const m = new Model({ inputs: IN, outputs: OUT, init: "xavier", seed: 1, backend });
    const bound = Math.sqrt(6 / (IN + OUT));
    const { mean, std, max } = stats(m.w);
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.98 * bound); // 2400 draws reach within 2% of the edge
    const sigma = bound / Math.sqrt(3);
    expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(N));
    expect(Math.abs(std / sigma - 1)).toBeLessThan(0.05); // sd of the sample sd ≈ 0.9%
    expect(Array.from(m.g).every((v) => v === 0)).toBe(true);
    expect(Array.from(m.b).every((v) => v === 0)).toBe(true);
    m.dispose();
  });

  it("uniform = U(±1/√in)", () => {
    const m = new Model({ inputs: IN, outputs: OUT, init: "uniform", seed: 1, backend });
    const bound = 1 / Math.sqrt(IN);
    const { mean, std, max } = stats(m.w);
    expect(max).toBeLessThanOrEqual(bound);
    expect(max).toBeGreaterThan(0.98 * bound);
    const sigma = bound / Math.sqrt(3);
    expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(N));
    expect(Math.abs(std / sigma - 1)).toBeLessThan(0.05);
    m.dispose();
  });

  it("normal = N(0, √(2/(in+out))): spread and tails of a Gaussian", () => {
    const m = new Model({ inputs: IN, outputs: OUT, init: "normal", seed: 1, backend });
    const sigma = Math.sqrt(2 / (IN + OUT));
    const { mean, std, a } = stats(m.w);
    expect(Math.abs(mean)).toBeLessThan((5 * sigma) / Math.sqrt(N));
    expect(Math.abs(std / sigma - 1)).toBeLessThan(0.075); // sd of the sample sd ≈ 1.4%
    // P(|w| > 2σ) = 4.55% for a Gaussian (0 for a uniform of the same sd: its edge is at 1.73σ).
    const tail = a.filter((v) => Math.abs(v) > 2 * sigma).length / N;
    expect(tail).toBeGreaterThan(0.0455 - 5 * Math.sqrt((0.0455 * 0.9545) / N));
    expect(tail).toBeLessThan(0.0455 + 5 * Math.sqrt((0.0455 * 0.9545) / N));
    expect(Array.from(m.g).every((v) => v === 0)).toBe(true);
    expect(Array.from(m.b).every((v) => v === 0)).toBe(true);
    m.dispose();
  });

  it("zeros", () => {
    const m = new Model({ inputs: IN, outputs: OUT, init: "zeros", seed: 1, backend });
    for (const k of ["w", "g", "b"] as const) expect(Array.from(m[k]).every((v) => v === 0)).toBe(true);
    m.dispose();
  });

  it("default init is xavier and default seed is 0; same seed → same w; other seeds differ", () => {
    const dflt = new Model({ inputs: 7, outputs: 9, backend });
    const seed0 = new Model({ inputs: 7, outputs: 9, seed: 0, init: "xavier", backend });
    const again = new Model({ inputs: 7, outputs: 9, seed: 0, backend });
    const seed1 = new Model({ inputs: 7, outputs: 9, seed: 1, backend });
    expect(Array.from(bits(dflt.w))).toEqual(Array.from(bits(seed0.w)));
    expect(Array.from(bits(again.w))).toEqual(Array.from(bits(seed0.w)));
    const differ = Array.from(seed1.w).filter((v, i) => v !== seed0.w[i]).length;
    expect(differ).toBeGreaterThan(60); // essentially all 63
    expect(Array.from(dflt.w).some((v) => v !== 0)).toBe(true);
    for (const m of [dflt, seed0, again, seed1]) m.dispose();
  });
});
