// Shared pieces of the property tests (issue 7): fast-check arbitraries for shapes and values,
// run settings, an overflow bound, tolerances with an underflow floor, and state snapshots.
import fc from "fast-check";
import { expect } from "vitest";
import { EntrogradError } from "entrograd";
import * as ref from "./reference";
import { DELTA_FLUSH, EPS32, TINY32, bits, defined, expectClose, zTolerance, type Tolerances } from "./helpers";

/** Runs per property: at least 10⁴ in the test run. ENTROGRAD_FC_RUNS / ENTROGRAD_FC_SEED change
 *  them (npm run fuzz sets them for long runs). */
export const RUNS = Number(process.env.ENTROGRAD_FC_RUNS ?? 10_000);
export const SEED = Number(process.env.ENTROGRAD_FC_SEED ?? 20_26);

/** fc.assert settings: a fixed seed, so the test run tries the same cases every time. */
export function settings(salt: number, runs = RUNS): fc.Parameters<unknown> {
  return { numRuns: runs, seed: SEED + salt };
}

/** The smallest positive float32 (a subnormal). */
export const MIN_SUB = 2 ** -149;
export const F32_MAX = 3.4028234663852886e38;

// ---- shapes -----------------------------------------------------------------------------------

/** One dimension: mostly 1..9 (every tail of the 4-wide vectors and 4×2 / 4×8 tiles), sometimes
 *  around 16 and 32. */
export const dim = fc.oneof(
  { weight: 24, arbitrary: fc.integer({ min: 1, max: 9 }) },
  { weight: 3, arbitrary: fc.integer({ min: 15, max: 17 }) },
  { weight: 1, arbitrary: fc.integer({ min: 31, max: 33 }) },
);

export interface Shape {
  inputs: number;
  outputs: number;
  batch: number;
}
export const shape: fc.Arbitrary<Shape> = fc.record({ inputs: dim, outputs: dim, batch: dim });

// ---- values -----------------------------------------------------------------------------------

/** How extreme a case's numbers are: moderate, + ±0/subnormal/tiny, + huge (overflow possible). */
export type Regime = "plain" | "small" | "wild";
export const regime: fc.Arbitrary<Regime> = fc.constantFrom<Regime>("plain", "plain", "plain", "small", "wild");

/** mulberry32, for filling arrays from one seed (fast; fast-check shrinks the seed). */
function mulberry32(seed: number): () => number {
  let t0 = seed >>> 0;
  return () => {
    t0 = (t0 + 0x6d2b79f5) >>> 0;
    let t = t0;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * n float32 values of the regime's kinds, from a seed: moderate values uniform in [-s, s]
 * (fast-check's own float arbitraries are uniform over the bit patterns, i.e. mostly tiny
 * numbers), and, outside "plain", ±0, subnormals, tiny values (1e-38..1e-20) and, for "wild",
 * huge ones (1e5..1e30), each in a few percent of the places.
 */
export function fill(r: Regime, n: number, s: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r === "plain" ? 0 : rnd();
    const sign = rnd() < 0.5 ? -1 : 1;
    if (u < 0.77) a[i] = (rnd() * 2 - 1) * s;
    else if (u < 0.83) a[i] = sign * 0;
    else if (u < 0.89) a[i] = sign * (1 + Math.floor(rnd() * (2 ** 23 - 1))) * MIN_SUB;
    else if (u < 0.95 || r === "small") a[i] = sign * 10 ** (-38 + 18 * rnd());
    else a[i] = sign * 10 ** (5 + 25 * rnd());
  }
  return a;
}

/** A finite float32 value of the regime's kinds, around magnitude s. */
export function value(r: Regime, s: number): fc.Arbitrary<number> {
  return fc.integer().map((seed) => fill(r, 1, s, seed)[0]);
}

/** Uniform in [lo, hi] on a grid of 2^-24 of the range (fc.double is uniform over bit patterns). */
export function uniform(lo: number, hi: number): fc.Arbitrary<number> {
  return fc.integer({ min: 0, max: 2 ** 24 }).map((i) => lo + ((hi - lo) * i) / 2 ** 24);
}

export function floats(r: Regime, n: number, s: number): fc.Arbitrary<Float32Array> {
  return fc.integer().map((seed) => fill(r, n, s, seed));
}

/** Targets in [0, 1], a sixth of them exactly 0 or 1 (and some -0). */
export function targets(n: number): fc.Arbitrary<Float32Array> {
  return fc.integer().map((seed) => {
    const rnd = mulberry32(seed);
    const t = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const u = rnd();
      t[i] = u < 0.08 ? 0 : u < 0.16 ? 1 : u < 0.18 ? -0 : rnd();
    }
    return t;
  });
}

export const reduction = fc.constantFrom<"mean" | "sum">("mean", "sum");

/** A weight of a mixed objective in [-2, 2]: 0 or at least 1e-6 in magnitude (the wasm cores
 *  hold weights as float32, where a subnormal weight has no relative precision left). */
const alpha = fc.integer({ min: -(2 ** 24), max: 2 ** 24 }).map((i) => Math.fround((i / 2 ** 24) * 2));

/** An objective: the default, entropy or cross-entropy alone, or a mix (weights may be negative). */
export const objective = fc.oneof(
  fc.constant(undefined),
  fc.constant({ entropy: 1 }),
  fc.constant({ crossEntropy: 1 }),
  fc.record({ entropy: alpha, crossEntropy: alpha }),
);

// ---- checks -----------------------------------------------------------------------------------

/** Below this many bits the kernels' entropy (and its derivative) is exactly 0: exp(−|z|) is
 *  flushed to 0 past |z| = 87 (docs: "exactly 0 once e underflows"), where H < 1e-35. */
export const ENTROPY_FLOOR = 1e-35;

/**
 * The bounds of helpers.tolerances, computed faster for the 10⁴-case properties: each f(z)'s
 * slope over [z − Δz, z + Δz] is taken as its global Lipschitz constant (σ 0.25, H 0.33, CE and δ
 * 1/ln2) instead of being sampled, which can only widen a bound (helpers.tolerances takes the
 * smaller of the sample and the constant). Plus absolute floors: on z for products that underflow
 * (each of the I + 2 roundings of a dot product can lose up to one subnormal step), and on the
 * entropy terms for the kernels' flush of H and z·σ(1−σ) to 0 past |z| = 87 — carried into the
 * sums and the gradients δᵀx.
 */
export function tolerancesWithFloor(
  p: ref.Params,
  x: ArrayLike<number>,
  e: ref.Evaluation,
  opts: ref.EvalOptions = {},
): Tolerances {
  const { inputs: I, outputs: O } = p;
  const B = e.batch,
    N = B * O;
  const a = ref.weightsOf(opts.objective);
  const targets = a.crossEntropy !== 0 ? defined(opts.targets, "targets of a cross-entropy objective") : null;
  const ae = Math.abs(a.entropy),
    ac = Math.abs(a.crossEntropy);
  const scale = (opts.reduction ?? "mean") === "mean" ? 1 / B : 1;
  const tz = zTolerance(p, x);
  const zFloor = (I + 2) * MIN_SUB;
  const t: Tolerances = {
    z: tz,
    d: new Float64Array(N),
    unitEntropy: new Float64Array(N),
    unitLoss: new Float64Array(N),
    delta: new Float64Array(N),
    loss: 0,
    entropy: 0,
    dw: new Float64Array(O * I),
    db: new Float64Array(O),
  };
  const E = 8 * EPS32,
    F = ENTROPY_FLOOR,
    inv = 1 / ref.LN2;
  let loss = 0,
    entropy = 0,
    lossMag = 0,
    entropyMag = 0;
  for (let k = 0; k < N; k++) {
    const z = e.z[k];
    tz[k] += zFloor;
    const dz = tz[k];
    const y = targets !== null ? targets[k] : 0;
    const h = e.unitEntropy[k];
    t.d[k] = 0.25 * dz + E * e.d[k] + TINY32;
    t.unitEntropy[k] = 0.33 * dz + E * h + TINY32 + F;
    const ceMag = (ref.softplus(z) + Math.abs(y * z)) * inv;
    const magL = ae * h + ac * ceMag;
    t.unitLoss[k] = (ae * 0.33 + ac * inv) * dz + E * magL + TINY32 + F * ae;
    const magD = ae * Math.abs(z * ref.sigmoidSlope(z)) * inv + ac * (e.d[k] + Math.abs(y)) * inv;
    t.delta[k] = scale * ((ae + ac) * inv * dz + E * magD) + TINY32 + F * ae * scale;
    loss += t.unitLoss[k];
    entropy += t.unitEntropy[k];
    lossMag += magL;
    entropyMag += h;
  }
  const sumGrowth = E * (Math.sqrt(N) + 1),
    bGrowth = E * (Math.sqrt(B) + 1);
  t.loss = scale * (loss + sumGrowth * lossMag);
  t.entropy = scale * (entropy + sumGrowth * entropyMag);
  for (let o = 0; o < O; o++) {
    let tb = 0,
      mb = 0;
    for (let n = 0; n < B; n++) {
      tb += t.delta[n * O + o];
      mb += Math.abs(e.delta[n * O + o]);
    }
    t.db[o] = tb + bGrowth * mb + TINY32;
    for (let i = 0; i < I; i++) {
      let tw = 0,
        mw = 0;
      for (let n = 0; n < B; n++) {
        const xv = Math.abs(x[n * I + i]);
        const dAbs = Math.abs(e.delta[n * O + o]),
          dTol = t.delta[n * O + o];
        tw += dTol * xv;
        mw += dAbs * xv;
        // Every backend's weight gradient reads |δ| < 2⁻¹⁰⁰ as 0 (docs/core-abi.md, pack): where
        // the kernel's δ may lie below that, its product may be missing from dw.
        if (dAbs - dTol < DELTA_FLUSH) tw += (dAbs + dTol) * xv;
      }
      t.dw[o * I + i] = tw + bGrowth * mw + TINY32;
    }
  }
  return t;
}

/** An upper bound on every intermediate magnitude of forward, objective and gradients on finite
 *  inputs (targets in [0, 1]): below f32's range by a margin, nothing can overflow. */
export function largestIntermediate(p: ref.Params, x: ArrayLike<number>, a: ref.Weights, scale: number): number {
  const { inputs: I, outputs: O } = p;
  const B = x.length / I;
  const ae = Math.abs(a.entropy),
    ac = Math.abs(a.crossEntropy);
  let big = Math.max(ae, ac * 1.5);
  const ws = new Float64Array(O * I);
  for (let k = 0; k < O * I; k++) {
    ws[k] = Math.abs(p.w[k]) + Math.abs(p.g[k]);
    big = Math.max(big, ws[k]);
  }
  const delta = 1.5 * scale * (ac + 0.225 * ae);
  big = Math.max(big, delta);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++) {
      let zm = Math.abs(p.b[o]);
      for (let i = 0; i < I; i++) zm += Math.abs(x[n * I + i]) * ws[o * I + i];
      big = Math.max(big, zm, ae + ac * 1.5 * (2 * zm + 1));
    }
  for (let i = 0; i < I; i++) {
    let s = 0;
    for (let n = 0; n < B; n++) s += delta * Math.abs(x[n * I + i]);
    big = Math.max(big, s);
  }
  return Math.max(big, delta * B);
}

export function mayOverflow(p: ref.Params, x: ArrayLike<number>, a: ref.Weights, scale: number): boolean {
  return largestIntermediate(p, x, a, scale) >= F32_MAX / 8;
}

/** Runs fn; returns the EntrogradError it threw (failing on any other throw), or null. */
export function attempt(fn: () => void): EntrogradError | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (!(e instanceof EntrogradError)) throw e;
    return e;
  }
}

/** Runs fn; returns [its value, null] or [undefined, the EntrogradError it threw]. */
export function attemptValue<T>(fn: () => T): [T | undefined, EntrogradError | null] {
  try {
    return [fn(), null];
  } catch (e) {
    if (!(e instanceof EntrogradError)) throw e;
    return [undefined, e];
  }
}

/** Every value finite. */
export function allFinite(a: ArrayLike<number>): boolean {
  for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k])) return false;
  return true;
}

/** Bitwise equality of two float arrays, NaNs alike. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = bits(a),
    y = bits(b);
  for (let k = 0; k < x.length; k++) if (x[k] !== y[k] && !(Number.isNaN(a[k]) && Number.isNaN(b[k]))) return false;
  return true;
}

/** expectClose without vitest's cost per call when everything is within tolerance. */
export function close(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: ArrayLike<number> | number,
  label: string,
): void {
  let ok = actual.length === expected.length;
  for (let i = 0; ok && i < expected.length; i++) {
    const t = typeof tol === "number" ? tol : tol[i];
    if (!(Math.abs(actual[i] - expected[i]) <= t) || !Number.isFinite(actual[i])) ok = false;
  }
  if (!ok) expectClose(actual, expected, tol, label);
}

export function check(cond: boolean, message: () => string): void {
  if (!cond) expect.fail(message());
}

export { EPS32, TINY32 };
