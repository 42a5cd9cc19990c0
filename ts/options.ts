// Validation of what users pass in. Every check runs before anything is written, and none
// allocates, so a step stays allocation-free.
//
// Users' values may be hostile: getters and Proxy traps that throw or call back into the package,
// typed-array subclasses whose getters lie, revoked proxies. Hence: every property is read once,
// through read() (a throw becomes an EntrogradError), and all of a call's reads happen before it
// touches any shared state, so a call re-entered from a getter completes first and the outer call
// then runs on its own values, as the two calls in sequence. Typed arrays are recognised and
// measured by the intrinsic getters, which run no user code.

import { AdaptFlag } from "./core/abi.js";
import { fail, foreign, show } from "./errors.js";

export type Reduction = "mean" | "sum" | "none";

/** Weights of the loss terms: `{ entropy: 1 }` is the seed's H; `{ crossEntropy: 1 }` is BCE in bits. */
export interface Objective {
  entropy?: number;
  crossEntropy?: number;
}

export interface LossOptions {
  /** "mean" (default) averages the per-sample sums over the batch; "sum" adds them up. */
  reduction?: Reduction;
  objective?: Objective;
  /** batch × outputs values in [0, 1]; needed when the objective has a crossEntropy term
   * (labelledRows × outputs with labelledRows). */
  targets?: Float32Array;
  /**
   * Semi-supervised rows (entropy regularisation, Grandvalet & Bengio 2004): the first
   * labelledRows rows of x are labelled and take the crossEntropy term alone, against targets
   * (labelledRows × outputs); the other rows take the entropy term alone. The reduction is over
   * the whole batch as always: with "mean", loss = (Σ_labelled αC·CE + Σ_unlabelled αE·H)/batch.
   */
  labelledRows?: number;
  /** Test-time adaptation (gradients and step): filter, EATA weights, diversity, metrics. */
  adapt?: AdaptOptions;
}

/**
 * Test-time adaptation of one step (TENT, EATA, SAR). Per sample, Hₙ = Σₒ H[n,o] in bits.
 * `{}` changes nothing in the loss and only adds the metrics.
 */
export interface AdaptOptions {
  /** E0 in bits: samples with Hₙ > E0 are left out of the loss (EATA's filter). With the
   * mean reduction the loss is the mean over the samples kept. */
  maxEntropy?: number;
  /** "none" (default) or "eata": a kept sample weighs 1/exp(Hₙ − E0); needs maxEntropy. */
  weighting?: "none" | "eata";
  /**
   * λ ≥ 0: adds λ·Σₒ KL(πₒ ‖ p̄ₒ) (Bernoulli, bits) to the loss (per batch under "mean", times
   * the batch size under "sum"): the running marginal p̄ₒ = β·marginal + (1 − β)·(the batch's
   * mean prediction of output o) is pulled towards the prior πₒ, so the predictions cannot
   * collapse to one answer nor drift from the training class mix. Default 0.
   */
  diversity?: number;
  /** πₒ: a number for every output, or a Float32Array (outputs), in [0, 1]. Default: the
   * model's prior (the training label frequency fit() records). */
  prior?: number | Float32Array;
  /** The running marginal before this batch (outputs, in [0, 1]); default: the prior. */
  marginal?: Float32Array;
  /** β in [0, 1): the share of the past in the running marginal. Default 0 (this batch alone);
   * Adapter keeps the marginal across steps (default β = 0.9). */
  marginalMomentum?: number;
}

// ---- reading users' objects ----------------------------------------------------------------

/** o[key], read once; whatever a getter or a Proxy trap throws becomes an EntrogradError. */
export function read(o: object, key: string, what: string): unknown {
  try {
    return (o as Record<string, unknown>)[key];
  } catch (e) {
    throw foreign(e, `${what}: reading ${key}`);
  }
}

export function checkKeys(o: object, allowed: readonly string[], what: string): void {
  let unknown: string | undefined;
  try {
    for (const key in o) {
      if (!allowed.includes(key)) {
        unknown = key;
        break;
      }
    }
  } catch (e) {
    throw foreign(e, `${what}: listing the options`);
  }
  if (unknown !== undefined)
    fail("OPTION", `${what}: unknown option ${show(unknown)} (allowed: ${allowed.join(", ")})`);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  try {
    return !Array.isArray(v);
  } catch {
    return false; // a revoked Proxy: nothing can be read from it
  }
}

/** True for an array (a Proxy of one too); false, never a throw, for anything else. */
export function isArray(v: unknown): v is unknown[] {
  try {
    return Array.isArray(v);
  } catch {
    return false;
  }
}

export function optionsObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined) return EMPTY;
  if (!isObject(v)) fail("OPTION", `${what}: options must be an object`);
  return v;
}
const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/**
 * The options as plain data: unknown keys are OPTION, and each allowed key is read once (a
 * getter's throw is OPTION), before the caller uses any of them.
 */
export function readOptions<K extends string>(v: unknown, keys: readonly K[], what: string): Record<K, unknown> {
  const o = optionsObject(v, what);
  checkKeys(o, keys, what);
  const out = Object.create(null) as Record<K, unknown>;
  for (const k of keys) out[k] = read(o, k, what);
  return out;
}

/** The listed keys of an object, each read once (other keys are left alone, unread). */
export function readKeys<K extends string>(o: object, keys: readonly K[], what: string): Record<K, unknown> {
  const out = Object.create(null) as Record<K, unknown>;
  for (const k of keys) out[k] = read(o, k, what);
  return out;
}

/** An array's items (at most `max` of them), read once (a Proxy's traps may throw: OPTION). */
export function readArray(v: unknown, what: string, max: number): unknown[] {
  if (!isArray(v)) fail("OPTION", `${what} must be an array`);
  const n = read(v, "length", what);
  if (typeof n !== "number" || !(n <= max)) fail("OPTION", `${what} must be an array of at most ${max} items`);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(read(v, String(i), what));
  return out;
}

// ---- typed arrays, by their intrinsic getters -------------------------------------------------

type Getter = (this: unknown) => unknown;
const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array.prototype) as object;
const getter = (proto: object, key: PropertyKey): Getter =>
  (Object.getOwnPropertyDescriptor(proto, key) as PropertyDescriptor).get as Getter;
const typedName = getter(TYPED_ARRAY, Symbol.toStringTag);
const typedLength = getter(TYPED_ARRAY, "length");
const typedBuffer = getter(TYPED_ARRAY, "buffer");
const typedByteOffset = getter(TYPED_ARRAY, "byteOffset");
const typedByteLength = getter(TYPED_ARRAY, "byteLength");
const viewBuffer = getter(DataView.prototype, "buffer");
const viewByteOffset = getter(DataView.prototype, "byteOffset");
const viewByteLength = getter(DataView.prototype, "byteLength");
const arrayBufferLength = getter(ArrayBuffer.prototype, "byteLength");

/** A real typed array of any kind (not a Proxy or a lookalike). */
export function isTypedArray(v: unknown): v is ArrayBufferView & ArrayLike<number | bigint> {
  return typedName.call(v) !== undefined;
}

/** A real Float32Array (of any realm, or a subclass), not a Proxy or a lookalike. */
export function isFloat32Array(v: unknown): v is Float32Array {
  return typedName.call(v) === "Float32Array";
}
/** A typed array's kind ("Uint8Array", ...), by the intrinsic getter; undefined for anything else. */
export function typedArrayName(v: unknown): string | undefined {
  return typedName.call(v) as string | undefined;
}
/** The true length, byte offset and buffer of a typed array (0, 0 once its buffer is detached),
 *  whatever a subclass's getters say. */
export const lengthOf = (a: ArrayBufferView): number => typedLength.call(a) as number;
export const byteOffsetOf = (a: ArrayBufferView): number => typedByteOffset.call(a) as number;
export const bufferOf = (a: ArrayBufferView): ArrayBufferLike => typedBuffer.call(a) as ArrayBufferLike;

/** A plain Float32Array over a Float32Array's floats (no subclass getters or methods left). */
export function plainView(a: Float32Array): Float32Array {
  const n = lengthOf(a);
  return n === 0 ? new Float32Array(0) : new Float32Array(bufferOf(a), byteOffsetOf(a), n);
}

/**
 * A plain Uint8Array over the bytes of an ArrayBuffer, a typed array or a DataView, or null for
 * anything else. A detached buffer gives no bytes.
 */
export function bytesView(v: unknown): Uint8Array | null {
  let buffer: ArrayBufferLike, offset: number, length: number;
  if (typedName.call(v) !== undefined) {
    buffer = typedBuffer.call(v) as ArrayBufferLike;
    offset = typedByteOffset.call(v) as number;
    length = typedByteLength.call(v) as number;
  } else {
    try {
      buffer = viewBuffer.call(v) as ArrayBufferLike; // throws unless v is a DataView
    } catch {
      try {
        length = arrayBufferLength.call(v) as number; // throws unless v is an ArrayBuffer
      } catch {
        return null;
      }
      return length === 0 ? new Uint8Array(0) : new Uint8Array(v as ArrayBuffer);
    }
    try {
      offset = viewByteOffset.call(v) as number;
      length = viewByteLength.call(v) as number;
    } catch {
      return new Uint8Array(0); // a DataView of a detached buffer
    }
  }
  return length === 0 ? new Uint8Array(0) : new Uint8Array(buffer, offset, length);
}

// ---- numbers and choices ----------------------------------------------------------------------

/** The largest float32: options the cores hold as float32 and check (maxGradNorm) stay at or below it. */
export const F32_MAX = 3.4028234663852886e38;
/** The smallest normal float32 (2⁻¹²⁶): a smaller non-zero option would be subnormal or 0 there. */
export const F32_MIN_NORMAL = 2 ** -126;

/** A finite number ≥ min (and ≤ max), or the default when undefined. */
export function numberOption(v: unknown, name: string, dflt: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) fail("OPTION", `${name} must be a finite number, got ${show(v)}`);
  if (v < min || v > max) fail("OPTION", `${name} must be in [${min}, ${max}], got ${v}`);
  return v;
}

/**
 * An option the cores hold as a float32 (learning rates, decays, objective weights, ...): as
 * numberOption, and also 0 or within float32's normal range in magnitude, so every backend
 * computes with the same value (the WebAssembly cores would hold 1e39 as Infinity, 1e-50 as 0).
 */
export function f32Option(v: unknown, name: string, dflt: number, min = -F32_MAX, max = F32_MAX): number {
  const x = numberOption(v, name, dflt, Math.max(min, -F32_MAX), Math.min(max, F32_MAX));
  if (x !== 0 && Math.abs(x) < F32_MIN_NORMAL) {
    fail("OPTION", `${name} must be 0 or at least ${F32_MIN_NORMAL} in magnitude (as a float32), got ${x}`);
  }
  return x;
}

/** A number that must be given (a property set to undefined is an error, not "no change"). */
export function requiredNumber(v: unknown, name: string): number {
  if (typeof v !== "number") fail("OPTION", `${name} must be a finite number, got ${show(v)}`);
  return v;
}

export function booleanOption(v: unknown, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") fail("OPTION", `${name} must be a boolean, got ${show(v)}`);
  return v;
}

export function choiceOption<T extends string>(v: unknown, name: string, choices: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (typeof v !== "string" || !(choices as readonly string[]).includes(v)) {
    fail("OPTION", `${name} must be one of ${choices.map((c) => `"${c}"`).join(", ")}, got ${show(v)}`);
  }
  return v as T;
}

/** A positive whole number of rows or columns. */
export function sizeOption(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    if (typeof v !== "number") fail("OPTION", `${name} must be a number, got ${typeof v}`);
    fail("SHAPE", `${name} must be a positive whole number, got ${v}`);
  }
  return v;
}

export const REDUCTIONS: readonly Reduction[] = ["mean", "sum", "none"];
const LOSS_KEYS = ["reduction", "objective", "targets", "labelledRows", "adapt"] as const;
const ADAPT_KEYS = ["maxEntropy", "weighting", "diversity", "prior", "marginal", "marginalMomentum"] as const;
const WEIGHTINGS = ["none", "eata"] as const;
const OBJECTIVE_KEYS = ["entropy", "crossEntropy"] as const;

/** The parsed loss options: weights and reduction, checked. */
export interface LossSpec {
  reduction: Reduction;
  entropyWeight: number;
  crossEntropyWeight: number;
  targets: Float32Array | undefined;
  /** Adaptation: -1 when off, else the adapt record's `AdaptFlag` bits (Filter, Eata; the
   * model adds Mean for the mean reduction). */
  adaptFlags: number;
  maxEntropy: number;
  diversity: number;
  /** Semi-supervised rows: how many are labelled; -1: none. */
  labelledRows: number;
  /** The diversity term's prior (a number for every output, an array, or the model's) and
   * running marginal before the batch (null: the prior), and β. */
  prior: number | Float32Array | null;
  marginal: Float32Array | null;
  marginalMomentum: number;
}

/** A LossSpec with the defaults (entropy, mean, no targets, no adaptation), to parse into. */
export function newLossSpec(): LossSpec {
  return {
    reduction: "mean",
    entropyWeight: 1,
    crossEntropyWeight: 0,
    targets: undefined,
    adaptFlags: -1,
    maxEntropy: 0,
    diversity: 0,
    labelledRows: -1,
    prior: null,
    marginal: null,
    marginalMomentum: 0,
  };
}

/** A plain view of a Float32Array whose values all lie in [0, 1] (else OPTION). */
function unitInterval(v: unknown, name: string): Float32Array {
  if (!isFloat32Array(v)) fail("OPTION", `${name} must be a Float32Array`);
  const a = plainView(v);
  for (let i = 0; i < a.length; i++)
    if (!(a[i] >= 0 && a[i] <= 1)) fail("OPTION", `${name}[${i}] is ${a[i]}, not in [0, 1]`);
  return a;
}

/**
 * Parses loss options into `into`. Every user value is read (once) before `into` is written: a
 * getter that calls back into the package (and so parses into the same `into`) finishes first.
 */
export function lossSpec(opts: unknown, what: string, into: LossSpec): LossSpec {
  const o = optionsObject(opts, what);
  checkKeys(o, LOSS_KEYS, what);
  const reductionValue = read(o, "reduction", what);
  const obj = read(o, "objective", what);
  const t = read(o, "targets", what);
  const labelledValue = read(o, "labelledRows", what);
  const ad = read(o, "adapt", what);
  let entropyValue: unknown, crossEntropyValue: unknown;
  if (obj !== undefined) {
    if (!isObject(obj)) fail("OPTION", `${what}: objective must be an object such as { entropy: 1 }`);
    checkKeys(obj, OBJECTIVE_KEYS, `${what}: objective`);
    entropyValue = read(obj, "entropy", `${what}: objective`);
    crossEntropyValue = read(obj, "crossEntropy", `${what}: objective`);
  }
  let maxEntropyValue: unknown, weightingValue: unknown, diversityValue: unknown;
  let priorValue: unknown, marginalValue: unknown, momentumValue: unknown;
  if (ad !== undefined) {
    if (!isObject(ad)) fail("OPTION", `${what}: adapt must be an object such as { maxEntropy: 2 }`);
    checkKeys(ad, ADAPT_KEYS, `${what}: adapt`);
    maxEntropyValue = read(ad, "maxEntropy", `${what}: adapt`);
    weightingValue = read(ad, "weighting", `${what}: adapt`);
    diversityValue = read(ad, "diversity", `${what}: adapt`);
    priorValue = read(ad, "prior", `${what}: adapt`);
    marginalValue = read(ad, "marginal", `${what}: adapt`);
    momentumValue = read(ad, "marginalMomentum", `${what}: adapt`);
  }
  // Everything is read: from here on no user code runs. Check, then write.
  const reduction = choiceOption(reductionValue, "reduction", REDUCTIONS, "mean");
  const entropyWeight = obj === undefined ? 1 : f32Option(entropyValue, "objective.entropy", 0);
  const crossEntropyWeight = obj === undefined ? 0 : f32Option(crossEntropyValue, "objective.crossEntropy", 0);
  if (t !== undefined && !isFloat32Array(t)) fail("OPTION", `${what}: targets must be a Float32Array`);
  if (crossEntropyWeight !== 0 && t === undefined) {
    fail("OPTION", `${what}: the crossEntropy objective needs targets (batch × outputs values in [0, 1])`);
  }
  if (crossEntropyWeight === 0 && t !== undefined) {
    fail("OPTION", `${what}: targets given, but the objective has no crossEntropy term to use them`);
  }
  let labelledRows = -1;
  if (labelledValue !== undefined) {
    labelledRows = numberOption(labelledValue, "labelledRows", 0, 0, 2 ** 32 - 1);
    if (!Number.isInteger(labelledRows)) fail("OPTION", `${what}: labelledRows must be a whole number`);
  }
  let adaptFlags = -1,
    maxEntropy = 0,
    diversity = 0,
    prior: number | Float32Array | null = null,
    marginal: Float32Array | null = null,
    marginalMomentum = 0;
  if (ad !== undefined) {
    if (reduction === "none") fail("OPTION", `${what}: adapt needs a scalar loss: use reduction "mean" or "sum"`);
    const filter = maxEntropyValue !== undefined;
    maxEntropy = f32Option(maxEntropyValue, "adapt.maxEntropy", 0, 0, 1e30);
    const eata = choiceOption(weightingValue, "adapt.weighting", WEIGHTINGS, "none") === "eata";
    if (eata && !filter) fail("OPTION", `${what}: adapt.weighting "eata" needs adapt.maxEntropy (its E0)`);
    diversity = f32Option(diversityValue, "adapt.diversity", 0, 0, 1e30);
    adaptFlags = (filter ? AdaptFlag.Filter : 0) | (eata ? AdaptFlag.Eata : 0);
    if (typeof priorValue === "number") prior = f32Option(priorValue, "adapt.prior", 0, 0, 1);
    else if (priorValue !== undefined) prior = unitInterval(priorValue, "adapt.prior");
    if (marginalValue !== undefined) marginal = unitInterval(marginalValue, "adapt.marginal");
    marginalMomentum = Math.fround(numberOption(momentumValue, "adapt.marginalMomentum", 0, 0, 1));
    if (!(marginalMomentum < 1)) fail("OPTION", "adapt.marginalMomentum must be below 1");
  }
  into.reduction = reduction;
  into.entropyWeight = entropyWeight;
  into.crossEntropyWeight = crossEntropyWeight;
  into.targets = t as Float32Array | undefined;
  into.adaptFlags = adaptFlags;
  into.maxEntropy = maxEntropy;
  into.diversity = diversity;
  into.labelledRows = labelledRows;
  into.prior = prior;
  into.marginal = marginal;
  into.marginalMomentum = marginalMomentum;
  return into;
}
