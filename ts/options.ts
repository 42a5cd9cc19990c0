// Validation of what users pass in. Every check runs before anything is written, and none
// allocates, so a step stays allocation-free.

import { AdaptFlag } from "./core/abi.js";
import { fail, show } from "./errors.js";

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
  /** batch × outputs values in [0, 1]; needed when the objective has a crossEntropy term. */
  targets?: Float32Array;
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
  /** λ ≥ 0: adds −λ·Σₒ h(mean over the batch of D[·,o]) to the loss (per batch under "mean",
   * times the batch size under "sum"), so the batch cannot collapse to one answer. Default 0. */
  diversity?: number;
}

export function checkKeys(o: object, allowed: readonly string[], what: string): void {
  for (const key in o) {
    if (!allowed.includes(key)) fail("OPTION", `${what}: unknown option "${key}" (allowed: ${allowed.join(", ")})`);
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function optionsObject(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined) return EMPTY;
  if (!isObject(v)) fail("OPTION", `${what}: options must be an object`);
  return v;
}
const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** The largest float32: options the cores hold as float32 and check (maxGradNorm) stay at or below it. */
export const F32_MAX = 3.4028234663852886e38;

/** A finite number ≥ min (and ≤ max), or the default when undefined. */
export function numberOption(v: unknown, name: string, dflt: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) fail("OPTION", `${name} must be a finite number, got ${show(v)}`);
  if (v < min || v > max) fail("OPTION", `${name} must be in [${min}, ${max}], got ${v}`);
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
const LOSS_KEYS = ["reduction", "objective", "targets", "adapt"] as const;
const ADAPT_KEYS = ["maxEntropy", "weighting", "diversity"] as const;
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
  };
}

export function lossSpec(opts: unknown, what: string, into: LossSpec): LossSpec {
  const o = optionsObject(opts, what);
  checkKeys(o, LOSS_KEYS, what);
  into.reduction = choiceOption(o.reduction, "reduction", REDUCTIONS, "mean");
  const obj = o.objective;
  if (obj === undefined) {
    into.entropyWeight = 1;
    into.crossEntropyWeight = 0;
  } else {
    if (!isObject(obj)) fail("OPTION", `${what}: objective must be an object such as { entropy: 1 }`);
    checkKeys(obj, OBJECTIVE_KEYS, `${what}: objective`);
    into.entropyWeight = numberOption(obj.entropy, "objective.entropy", 0);
    into.crossEntropyWeight = numberOption(obj.crossEntropy, "objective.crossEntropy", 0);
  }
  const t = o.targets;
  if (t !== undefined && !(t instanceof Float32Array)) fail("OPTION", `${what}: targets must be a Float32Array`);
  if (into.crossEntropyWeight !== 0 && t === undefined) {
    fail("OPTION", `${what}: the crossEntropy objective needs targets (batch × outputs values in [0, 1])`);
  }
  into.targets = t;
  const ad = o.adapt;
  into.adaptFlags = -1;
  if (ad !== undefined) {
    if (!isObject(ad)) fail("OPTION", `${what}: adapt must be an object such as { maxEntropy: 2 }`);
    checkKeys(ad, ADAPT_KEYS, `${what}: adapt`);
    if (into.reduction === "none") fail("OPTION", `${what}: adapt needs a scalar loss: use reduction "mean" or "sum"`);
    const filter = ad.maxEntropy !== undefined;
    into.maxEntropy = numberOption(ad.maxEntropy, "adapt.maxEntropy", 0, 0, 1e30);
    const eata = choiceOption(ad.weighting, "adapt.weighting", WEIGHTINGS, "none") === "eata";
    if (eata && !filter) fail("OPTION", `${what}: adapt.weighting "eata" needs adapt.maxEntropy (its E0)`);
    into.diversity = numberOption(ad.diversity, "adapt.diversity", 0, 0, 1e30);
    into.adaptFlags = (filter ? AdaptFlag.Filter : 0) | (eata ? AdaptFlag.Eata : 0);
  }
  return into;
}
