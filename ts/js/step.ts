// The drivers: what one call into the core does. Each mirrors an export of the Rust
// bindings (forward, entropy, gradients, step) and takes the same arguments, as an object
// instead of the args block. `step` is forward + objective + gradients + update in one call,
// and checks every value before it writes any.

import { Status } from "../errors.js";
import { forward, gemm, sumWeights } from "./forward.js";
import { biasGradient, weightGradient } from "./gradients.js";
import { objective, type ObjectiveWeights } from "./objective.js";
import { RuleKind, sgdUpdate, type Rule } from "./sgd.js";

export interface Args extends ObjectiveWeights {
  batch: number;
  inputs: number;
  outputs: number;
  x: Float32Array;
  targets: Float32Array | null;
  w: Float32Array;
  g: Float32Array;
  b: Float32Array;
  wsum: Float32Array;
  z: Float32Array;
  d: Float32Array;
  delta: Float32Array;
  units: Float32Array | null;
  unitLoss: Float32Array | null;
  dw: Float32Array;
  db: Float32Array;
  /** Optional scratch for weightGradient: batch × (inputs + outputs) floats. */
  scratch?: Float32Array;
  /** Update rules for w, g, b (step only). */
  rules: readonly [Rule, Rule, Rule] | null;
  /** scale·Σloss and scale·Σentropy, written by entropy, gradients and step. */
  totals: Float64Array;
}

function allFinite(a: Float32Array, length: number): boolean {
  let check = 0;
  for (let i = 0; i < length; i++) check += a[i] * 0;
  return check === 0;
}

/** Tells a bad input from an overflow once a result turned out non-finite. */
function blame(a: Args): number {
  return allFinite(a.x, a.batch * a.inputs) ? Status.NonFiniteResult : Status.NonFiniteInput;
}

export function forwardCall(a: Args): number {
  sumWeights(a.w, a.g, a.wsum, a.outputs * a.inputs);
  forward(a.x, a.wsum, a.b, a.z, a.d, a.batch, a.inputs, a.outputs);
  return allFinite(a.z, a.batch * a.outputs) ? Status.Ok : blame(a);
}

export function entropyCall(a: Args): number {
  sumWeights(a.w, a.g, a.wsum, a.outputs * a.inputs);
  gemm(a.x, a.wsum, a.b, a.z, a.batch, a.inputs, a.outputs); // the objective writes d
  const status = objective(a.z, a.d, a.targets, a, a.delta, a.units, a.unitLoss, a.batch * a.outputs, a.totals);
  return status === Status.NonFiniteResult ? blame(a) : status;
}

export function gradientsCall(a: Args): number {
  const status = entropyCall(a);
  if (status !== Status.Ok) return status;
  weightGradient(a.delta, a.x, a.dw, a.batch, a.inputs, a.outputs, a.scratch);
  biasGradient(a.delta, a.db, a.batch, a.outputs);
  const n = a.outputs * a.inputs;
  return allFinite(a.dw, n) && allFinite(a.db, a.outputs) ? Status.Ok : Status.NonFiniteResult;
}

function update(rule: Rule, theta: Float32Array, grad: Float32Array, length: number, write: boolean): boolean {
  if (rule.kind === RuleKind.Frozen) return true;
  const ok = sgdUpdate(theta, grad, length, rule, write);
  if (write && rule.buf !== null) rule.bufReady = true;
  return ok;
}

export function step(a: Args): number {
  const status = gradientsCall(a);
  if (status !== Status.Ok) return status;
  const r = a.rules as readonly [Rule, Rule, Rule];
  const rw = r[0], rg = r[1], rb = r[2];
  const n = a.outputs * a.inputs;
  // dW = dG: one gradient serves both. First check every value, then write.
  const finite =
    update(rw, a.w, a.dw, n, false) && update(rg, a.g, a.dw, n, false) && update(rb, a.b, a.db, a.outputs, false);
  if (!finite) return Status.NonFiniteResult;
  update(rw, a.w, a.dw, n, true);
  update(rg, a.g, a.dw, n, true);
  update(rb, a.b, a.db, a.outputs, true);
  return Status.Ok;
}
