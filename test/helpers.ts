// Shared test helpers: the backends, float32 tolerances derived from magnitudes, comparisons,
// snapshots and error checks. The math itself lives in reference.ts.
import { expect } from "vitest";
import { EntrogradError } from "entrograd";
import * as ref from "./reference";

export const BACKENDS = ["wasm-simd", "wasm", "js"] as const;
export type Backend = (typeof BACKENDS)[number];

/** Spacing of float32 numbers at 1 (2⁻²³); the unit roundoff is half of it. */
export const EPS32 = 2 ** -23;
/** Below the smallest normal float32 a relative comparison means nothing. */
export const TINY32 = 1.2e-38;

// ---- tolerances ------------------------------------------------------------------------------
//
// Every value the package computes in float32 is compared with the float64 reference computed
// from the same float32 inputs and parameters. The bounds below follow the usual rounding-error
// analysis with a safety factor of 8, and with √n growth for sums of n terms (rounding errors of
// independent signs; the worst case n·u is never approached by real kernels and would make the
// tests blind).
//
//  z:  |Δz| ≤ 8·ε·(√I + 1)·(Σᵢ|xᵢ·(wᵢ+gᵢ)| + |b|)   (dot product of I terms, plus w+g rounding)
//  f(z) for σ, H, CE, δ:  |Δf| ≤ max|f'|·Δz + 8·ε·m_f   where m_f is the magnitude of the terms
//      f is computed from (|f| itself for σ and H, which a stable formula keeps; softplus + |y·z|
//      for CE, which cancels by definition), and max|f'| is taken over [z−Δz, z+Δz].
//  reductions and the δᵀ·x gradients: Σ of the propagated element bounds + 8·ε·(√n+1)·Σ|terms|.

/** Bound on the error of a float32 z against the float64 reference, per unit. */
export function zTolerance(p: ref.Params, x: ArrayLike<number>): Float64Array {
  const { inputs: I, outputs: O } = p;
  const B = ref.batchOf(p, x);
  const tol = new Float64Array(B * O);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      let m = Math.abs(p.b[o]);
      for (let i = 0; i < I; i++) m += Math.abs(x[n * I + i] * (p.w[o * I + i] + p.g[o * I + i]));
      tol[n * O + o] = 8 * EPS32 * (Math.sqrt(I) + 1) * m;
    }
  return tol;
}

/** Lipschitz bounds of the functions of z, for when Δz is too wide to sample f' locally. */
const LIPSCHITZ = { sigmoid: 0.25, entropy: 0.33, crossEntropy: 1 / ref.LN2, delta: 1 / ref.LN2 };

/** max |f'| over [z − dz, z + dz], by sampling when dz is small against f's scale of change (1). */
function slopeBound(fp: (t: number) => number, z: number, dz: number, lipschitz: number): number {
  if (dz > 0.25) return lipschitz;
  let m = 0;
  for (let k = -4; k <= 4; k++) m = Math.max(m, Math.abs(fp(z + (k * dz) / 4)));
  return Math.min(1.5 * m, lipschitz);
}

const dEntropy = (t: number) => (-t * ref.sigmoidSlope(t)) / ref.LN2;
/** d/dz of the entropy part of δ: −(s + z·s·(1−2σ))/ln2 with s = σ(1−σ). */
const dDeltaEntropy = (t: number) => -(ref.sigmoidSlope(t) * (1 + t * (1 - 2 * ref.sigmoid(t)))) / ref.LN2;

export interface Tolerances {
  z: Float64Array;
  d: Float64Array;
  unitEntropy: Float64Array;
  unitLoss: Float64Array;
  delta: Float64Array; // scaled like δ
  loss: number;
  entropy: number;
  dw: Float64Array;
  db: Float64Array;
}

/** Bounds for every output of one call, given the reference evaluation at the same inputs. */
/** The weight gradient's flush threshold, crate/src/pack `DELTA_FLUSH` (2⁻¹⁰⁰). */
export const DELTA_FLUSH = 2 ** -100;

export function tolerances(
  p: ref.Params,
  x: ArrayLike<number>,
  e: ref.Evaluation,
  opts: ref.EvalOptions = {},
): Tolerances {
  const { inputs: I, outputs: O } = p;
  const B = e.batch;
  const N = B * O;
  const a = ref.weightsOf(opts.objective);
  const targets = a.crossEntropy !== 0 ? defined(opts.targets, "targets of a cross-entropy objective") : null;
  const scale = (opts.reduction ?? "mean") === "mean" ? 1 / B : 1;
  const tz = zTolerance(p, x);
  const d = new Float64Array(N);
  const unitEntropy = new Float64Array(N);
  const unitLoss = new Float64Array(N);
  const delta = new Float64Array(N);
  let loss = 0;
  let entropy = 0;
  let lossMag = 0;
  let entropyMag = 0;
  for (let k = 0; k < N; k++) {
    const z = e.z[k];
    const dz = tz[k];
    const y = targets !== null ? targets[k] : 0;
    d[k] = slopeBound(ref.sigmoidSlope, z, dz, LIPSCHITZ.sigmoid) * dz + 8 * EPS32 * e.d[k] + TINY32;
    const h = e.unitEntropy[k];
    const hSlope = slopeBound(dEntropy, z, dz, LIPSCHITZ.entropy);
    unitEntropy[k] = hSlope * dz + 8 * EPS32 * h + TINY32;
    const ceMag = (ref.softplus(z) + Math.abs(y * z)) / ref.LN2;
    const ceSlope = slopeBound((t) => (ref.sigmoid(t) - y) / ref.LN2, z, dz, LIPSCHITZ.crossEntropy);
    const magL = Math.abs(a.entropy) * h + Math.abs(a.crossEntropy) * ceMag;
    unitLoss[k] = (Math.abs(a.entropy) * hSlope + Math.abs(a.crossEntropy) * ceSlope) * dz + 8 * EPS32 * magL + TINY32;
    const magD =
      (Math.abs(a.entropy) * Math.abs(z * ref.sigmoidSlope(z))) / ref.LN2 +
      (Math.abs(a.crossEntropy) * (ref.sigmoid(z) + Math.abs(y))) / ref.LN2;
    const slopeD =
      Math.abs(a.entropy) * slopeBound(dDeltaEntropy, z, dz, LIPSCHITZ.delta) +
      Math.abs(a.crossEntropy) * slopeBound((t) => ref.sigmoidSlope(t) / ref.LN2, z, dz, LIPSCHITZ.delta);
    delta[k] = scale * (slopeD * dz + 8 * EPS32 * magD) + TINY32;
    loss += unitLoss[k];
    entropy += unitEntropy[k];
    lossMag += magL;
    entropyMag += h;
  }
  const sumGrowth = 8 * EPS32 * (Math.sqrt(N) + 1);
  const dw = new Float64Array(O * I);
  const db = new Float64Array(O);
  const bGrowth = 8 * EPS32 * (Math.sqrt(B) + 1);
  for (let o = 0; o < O; o++) {
    let tb = 0;
    let mb = 0;
    for (let n = 0; n < B; n++) {
      tb += delta[n * O + o];
      mb += Math.abs(e.delta[n * O + o]);
    }
    db[o] = tb + bGrowth * mb + TINY32;
    for (let i = 0; i < I; i++) {
      let t = 0;
      let m = 0;
      for (let n = 0; n < B; n++) {
        const xv = Math.abs(x[n * I + i]);
        const dAbs = Math.abs(e.delta[n * O + o]),
          dTol = delta[n * O + o];
        t += dTol * xv;
        m += dAbs * xv;
        // Every backend's weight gradient reads |δ| < 2⁻¹⁰⁰ as 0 (docs/core-abi.md, pack): where
        // the kernel's δ may lie below that, its product may be missing from dw.
        if (dAbs - dTol < DELTA_FLUSH) t += (dAbs + dTol) * xv;
      }
      dw[o * I + i] = t + bGrowth * m + TINY32;
    }
  }
  return {
    z: tz,
    d,
    unitEntropy,
    unitLoss,
    delta,
    loss: scale * (loss + sumGrowth * lossMag),
    entropy: scale * (entropy + sumGrowth * entropyMag),
    dw,
    db,
  };
}

// ---- comparisons -------------------------------------------------------------------------------

/** Element-wise |actual − expected| ≤ tol, every actual finite; reports the worst few misses. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: ArrayLike<number> | number,
  label: string,
): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const misses: { i: number; excess: number; text: string }[] = [];
  for (let i = 0; i < expected.length; i++) {
    const t = typeof tol === "number" ? tol : tol[i];
    const diff = Math.abs(actual[i] - expected[i]);
    if (!Number.isFinite(actual[i]) || !(diff <= t))
      misses.push({
        i,
        excess: Number.isFinite(diff) ? diff / t : Infinity,
        text: `[${i}] got ${actual[i]}, expected ${expected[i]} ± ${t.toExponential(2)} (off by ${diff.toExponential(2)})`,
      });
  }
  misses.sort((a, b) => b.excess - a.excess);
  expect(
    misses.slice(0, 5).map((m) => m.text),
    `${label}: ${misses.length} of ${expected.length} outside tolerance`,
  ).toEqual([]);
}

export function expectCloseNumber(actual: number, expected: number, tol: number, label: string): void {
  expectClose([actual], [expected], tol, label);
}

/** A per-unit result ("none" reduction): checks at run time that it is a Float32Array. */
export function perUnit(v: number | Float32Array, label = "per-unit result"): Float32Array {
  expect(v, `${label} is a Float32Array`).toBeInstanceOf(Float32Array);
  return v as Float32Array;
}

/** Copies a Float32Array's bits, to prove later that nothing changed. */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.slice().buffer);
}

/** Bit snapshots of a model's parameters. */
export function snapshot(m: { w: Float32Array; g: Float32Array; b: Float32Array }) {
  return { w: bits(m.w), g: bits(m.g), b: bits(m.b) };
}

/** Float64 copies of a model's parameters, for the reference. */
export function paramsOf(m: {
  inputs: number;
  outputs: number;
  w: Float32Array;
  g: Float32Array;
  b: Float32Array;
}): ref.Params {
  return { inputs: m.inputs, outputs: m.outputs, w: Array.from(m.w), g: Array.from(m.g), b: Array.from(m.b) };
}

/** Calls fn, expects an EntrogradError with this code, returns it. */
export function expectCode(fn: () => unknown, code: string, label = code): EntrogradError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `${label}: expected a throw`).toBeDefined();
  expect(thrown, `${label}: ${String(thrown)}`).toBeInstanceOf(EntrogradError);
  expect((thrown as EntrogradError).code, `${label}: ${String(thrown)}`).toBe(code);
  return thrown as EntrogradError;
}

/** A batch of x with entries in [−s, s]. */
export function batchX(rng: ref.Rng, batch: number, inputs: number, s = 1): Float32Array {
  return rng.floats(batch * inputs, -s, s);
}

/** Targets in [0, 1], with some exact 0s and 1s. */
export function targetsFor(rng: ref.Rng, n: number): Float32Array {
  const t = rng.floats(n, 0, 1);
  for (let k = 0; k < n; k += 7) t[k] = k % 2 ? 1 : 0;
  return t;
}

/** v itself, or a failed test naming what is missing (rather than a TypeError a few lines on). */
export function defined<T>(v: T | null | undefined, what: string): T {
  if (v === null || v === undefined) throw new Error(`${what}: missing (${v})`);
  return v;
}

/** The last line of a child process's output: the scripts the tests run end with one JSON line. */
export function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1];
}
