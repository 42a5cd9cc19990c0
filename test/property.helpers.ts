// Shared pieces of the property tests (issue 7): fast-check arbitraries for shapes and values,
// run settings, an overflow bound, tolerances with an underflow floor, and state snapshots.
import fc from "fast-check";
import { expect } from "vitest";
import { EntrogradError } from "entrograd";
import * as ref from "./reference";
import { EPS32, TINY32, bits, expectClose, tolerances, type Tolerances } from "./helpers";

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
  { weight: 14, arbitrary: fc.integer({ min: 1, max: 9 }) },
  { weight: 2, arbitrary: fc.integer({ min: 15, max: 17 }) },
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

const plain = (s: number) => fc.double({ min: -s, max: s, noNaN: true }).map(Math.fround);
const zeros = fc.constantFrom(0, -0);
const subnormal = fc
  .tuple(fc.integer({ min: 1, max: 2 ** 23 - 1 }), fc.boolean())
  .map(([m, neg]) => (neg ? -1 : 1) * m * MIN_SUB);
const tiny = fc.tuple(fc.double({ min: -38, max: -20, noNaN: true }), fc.boolean()).map(([e, neg]) => Math.fround((neg ? -1 : 1) * 10 ** e));
const huge = fc.tuple(fc.double({ min: 5, max: 30, noNaN: true }), fc.boolean()).map(([e, neg]) => Math.fround((neg ? -1 : 1) * 10 ** e));

/** A finite float32 value of the regime's kinds, around magnitude s. */
export function value(r: Regime, s: number): fc.Arbitrary<number> {
  if (r === "plain") return plain(s);
  const parts = [
    { weight: 10, arbitrary: plain(s) },
    { weight: 1, arbitrary: zeros },
    { weight: 1, arbitrary: subnormal },
    { weight: 1, arbitrary: tiny },
  ];
  if (r === "wild") parts.push({ weight: 2, arbitrary: huge });
  return fc.oneof(...parts);
}

export function floats(r: Regime, n: number, s: number): fc.Arbitrary<Float32Array> {
  return fc.array(value(r, s), { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));
}

/** Targets in [0, 1], with exact 0s and 1s. */
export function targets(n: number): fc.Arbitrary<Float32Array> {
  const t = fc.oneof(
    { weight: 3, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }).map(Math.fround) },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, -0) },
  );
  return fc.array(t, { minLength: n, maxLength: n }).map((a) => Float32Array.from(a));
}

export const reduction = fc.constantFrom<"mean" | "sum">("mean", "sum");

/** A weight of a mixed objective in [-2, 2]: 0 or at least 1e-6 in magnitude (the wasm cores
 *  hold weights as float32, where a subnormal weight has no relative precision left). */
const alpha = fc.double({ min: -2, max: 2, noNaN: true }).map((v) => (Math.abs(v) < 1e-6 ? 0 : Math.fround(v)));

/** An objective: the default, entropy or cross-entropy alone, or a mix (weights may be negative). */
export const objective = fc.oneof(
  fc.constant(undefined),
  fc.constant({ entropy: 1 }),
  fc.constant({ crossEntropy: 1 }),
  fc.record({ entropy: alpha, crossEntropy: alpha }),
);

// ---- checks -----------------------------------------------------------------------------------

/** The helpers' tolerances, with an absolute floor on z for products that underflow (each of
 *  the I + 2 roundings of a dot product can lose up to one subnormal step). */
export function tolerancesWithFloor(p: ref.Params, x: ArrayLike<number>, e: ref.Evaluation, opts: ref.EvalOptions = {}): Tolerances {
  const t = tolerances(p, x, e, opts);
  const floor = (p.inputs + 2) * MIN_SUB;
  for (let k = 0; k < t.z.length; k++) t.z[k] += floor;
  return t;
}

/** An upper bound on every intermediate magnitude of forward, objective and gradients on finite
 *  inputs (targets in [0, 1]): below f32's range by a margin, nothing can overflow. */
export function largestIntermediate(p: ref.Params, x: ArrayLike<number>, a: ref.Weights, scale: number): number {
  const { inputs: I, outputs: O } = p;
  const B = x.length / I;
  const ae = Math.abs(a.entropy), ac = Math.abs(a.crossEntropy);
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
  const x = bits(a), y = bits(b);
  for (let k = 0; k < x.length; k++) if (x[k] !== y[k] && !(Number.isNaN(a[k]) && Number.isNaN(b[k]))) return false;
  return true;
}

/** expectClose without vitest's cost per call when everything is within tolerance. */
export function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: ArrayLike<number> | number, label: string): void {
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
