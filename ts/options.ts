// Validation of what users pass in. Every check runs before anything is written, and none
// allocates, so a step stays allocation-free.

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
const LOSS_KEYS = ["reduction", "objective", "targets"] as const;
const OBJECTIVE_KEYS = ["entropy", "crossEntropy"] as const;

/** The parsed loss options: weights and reduction, checked. */
export interface LossSpec {
  reduction: Reduction;
  entropyWeight: number;
  crossEntropyWeight: number;
  targets: Float32Array | undefined;
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
  return into;
}
