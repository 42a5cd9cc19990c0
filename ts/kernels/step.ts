// The drivers: what one call into the core does. Each mirrors an export of the Rust
// bindings (forward, objective, gradients, step) and takes the same arguments, as an object
// instead of the args block. `step` is forward + objective + gradients + update in one call,
// and checks every value before it writes any: as in crate/src/step.rs, where every rule is
// plain SGD or frozen a bound from the largest |θ| and |grad| proves the update finite and it
// is one writing pass; otherwise every update first runs without writing. The rules are input
// only: the optimizer advances their counters after a successful step.

import { RuleKind, Status } from "../core/abi.js";
import { adapt, type AdaptArgs } from "./adapt.js";
import { forward, gemm, sumWeights } from "./forward.js";
import { biasGradient, packDelta, weightGradient } from "./gradients.js";
import { type LossCoefficients, objective } from "./objective.js";
import { adamUpdate } from "./adam.js";
import { clipCoefficient, scale, sumSquares } from "./clip.js";
import { type Rule, sgdUpdate } from "./sgd.js";

/** The args block as an object (crate/src/abi `Args`), with the rules and results beside it. */
export interface Args extends LossCoefficients {
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
  unitEntropy: Float32Array | null;
  unitLoss: Float32Array | null;
  dw: Float32Array;
  db: Float32Array;
  /** Scratch for the weight gradient: δ in pairs (batch × outputs floats). */
  scratch: Float32Array;
  /** Largest |w|, |g| (from sumWeights), |dw|, |db| (from the gradient kernels) of the call. */
  maxima: Float64Array;
  /** Update rules for w, g, b (step only). */
  rules: readonly [Rule, Rule, Rule] | null;
  /** Gradient-norm clipping threshold (step only); 0 = off. */
  maxGradNorm: number;
  /** scale·Σloss and scale·Σentropy, written by objective, gradients and step. */
  totals: Float64Array;
  /** The test-time adaptation pass (gradients and step); needs unitEntropy and unitLoss. */
  adapt: AdaptArgs | null;
  /** Semi-supervised rows: the first labelledRows rows take the cross-entropy term alone
   * (targets: labelledRows × outputs), the others the entropy term alone; null: every row both. */
  labelledRows: number | null;
}

function allFinite(a: Float32Array, length: number): boolean {
  let check = 0;
  for (let i = 0; i < length; i++) check += a[i] * 0;
  return check === 0;
}

/** Why a call failed, in the ABI's precedence (as the core's status::classify): a non-finite x
 *  (1), then a non-finite target (2), then a target outside [0, 1] (3), else an overflow (4).
 *  Only called on the failing path: it scans x and the targets. */
function classify(a: Args): number {
  if (!allFinite(a.x, a.batch * a.inputs)) return Status.NonFiniteInput;
  const t = a.targets;
  if (t !== null && a.crossEntropyWeight !== 0) {
    const n = (a.labelledRows ?? a.batch) * a.outputs;
    if (!allFinite(t, n)) return Status.NonFiniteTarget;
    for (let k = 0; k < n; k++) if (t[k] < 0 || t[k] > 1) return Status.TargetOutOfRange;
  }
  return Status.NonFiniteResult;
}

export function forwardCall(a: Args): number {
  sumWeights(a.w, a.g, a.wsum, a.outputs * a.inputs, a.maxima);
  forward(a.x, a.wsum, a.b, a.z, a.d, a.batch, a.inputs, a.outputs);
  return allFinite(a.z, a.batch * a.outputs) ? Status.Ok : classify(a);
}

/** The two parts' sums of a semi-supervised objective (reused: a call allocates nothing). */
const PART_TOTALS = [new Float64Array(2), new Float64Array(2)];

export function objectiveCall(a: Args): number {
  sumWeights(a.w, a.g, a.wsum, a.outputs * a.inputs, a.maxima);
  gemm(a.x, a.wsum, a.b, a.z, a.batch, a.inputs, a.outputs); // the objective writes d
  const n = a.batch * a.outputs;
  let status: number;
  if (a.labelledRows === null) {
    status = objective(a.z, a.d, a.targets, a, a.delta, a.unitEntropy, a.unitLoss, n, a.totals);
  } else {
    // Semi-supervised rows: units before `split` have the cross-entropy term alone, the rest
    // the entropy term alone (crate/src/step.rs, objective_pass).
    const split = a.labelledRows * a.outputs;
    const part = (from: number, to: number, c: LossCoefficients, y: Float32Array | null, into: Float64Array) =>
      objective(
        a.z.subarray(from, to),
        a.d.subarray(from, to),
        y,
        c,
        a.delta.subarray(from, to),
        a.unitEntropy === null ? null : a.unitEntropy.subarray(from, to),
        a.unitLoss === null ? null : a.unitLoss.subarray(from, to),
        to - from,
        into,
      );
    const [labelled, rest] = PART_TOTALS;
    status = part(
      0,
      split,
      { entropyWeight: 0, crossEntropyWeight: a.crossEntropyWeight, scale: a.scale },
      a.targets,
      labelled,
    );
    if (status === Status.Ok)
      status = part(split, n, { entropyWeight: a.entropyWeight, crossEntropyWeight: 0, scale: a.scale }, null, rest);
    a.totals[0] = labelled[0] + rest[0];
    a.totals[1] = labelled[1] + rest[1];
  }
  // The objective stops at the first bad target it meets; x and the other targets decide the code.
  return status === Status.Ok ? Status.Ok : classify(a);
}

export function gradientsCall(a: Args): number {
  if (a.adapt !== null && (a.unitEntropy === null || a.unitLoss === null)) return Status.InvalidArgs;
  const status = objectiveCall(a);
  if (status !== Status.Ok) return status;
  if (a.adapt !== null) {
    const loss = adapt(
      a.z,
      a.d,
      a.unitEntropy as Float32Array,
      a.unitLoss as Float32Array,
      a.delta,
      a.batch,
      a.outputs,
      a.scale,
      a.adapt,
    );
    a.totals[0] = loss;
    if (!Number.isFinite(loss)) return Status.NonFiniteResult;
  }
  const { batch, inputs, outputs } = a;
  const pairs = a.scratch.subarray(0, batch * outputs);
  packDelta(a.delta, pairs, batch, outputs);
  const m = a.maxima;
  m[2] = weightGradient(pairs, a.x, a.dw, batch, inputs, outputs);
  m[3] = biasGradient(a.delta, a.db, batch, outputs);
  return Number.isFinite(m[2]) && Number.isFinite(m[3]) ? Status.Ok : Status.NonFiniteResult;
}

/** Whether `rule` provably writes only finite values (crate/src/step.rs `plain_sgd_finite`):
 * frozen, or plain SGD (no momentum, no weight decay) with max|θ| + |lr|·max|grad|, with a margin
 * for the roundings, below float32's largest value. NaN fails it. */
function plainSgdFinite(rule: Rule, maxTheta: number, maxGrad: number): boolean {
  if (rule.kind === RuleKind.Frozen) return true;
  if (rule.kind !== RuleKind.Sgd || rule.momentum !== 0 || rule.weightDecay !== 0) return false;
  const slack = 1 + 2 ** -23;
  return (maxTheta + Math.abs(rule.lr) * maxGrad * slack) * slack < F32_MAX;
}

const F32_MAX = 3.4028234663852886e38;

function maxAbs(v: Float32Array, length: number): number {
  let m = 0;
  for (let i = 0; i < length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

function update(rule: Rule, theta: Float32Array, grad: Float32Array, length: number, write: boolean): boolean {
  switch (rule.kind) {
    case RuleKind.Sgd:
      return sgdUpdate(theta, grad, length, rule, write);
    case RuleKind.Adam:
      return adamUpdate(theta, grad, length, rule, write);
    default:
      return true; // frozen
  }
}

export function step(a: Args): number {
  const r = a.rules as readonly [Rule, Rule, Rule];
  const max = a.maxGradNorm;
  if (!(max >= 0 && Number.isFinite(max))) return Status.InvalidArgs;
  for (const rule of r) {
    if (rule.kind === RuleKind.Adam && (rule.expAvg === null || rule.expAvgSq === null)) return Status.InvalidArgs;
  }
  const status = gradientsCall(a);
  if (status !== Status.Ok) return status;
  const rw = r[0],
    rg = r[1],
    rb = r[2];
  const n = a.outputs * a.inputs;
  if (max > 0) {
    // Clipping over the parameters being updated: dw counts once for each of w, g updated.
    const shared = (rw.kind !== RuleKind.Frozen ? 1 : 0) + (rg.kind !== RuleKind.Frozen ? 1 : 0);
    let sq = 0;
    if (shared > 0) sq += sumSquares(a.dw, n) * shared;
    if (rb.kind !== RuleKind.Frozen) sq += sumSquares(a.db, a.outputs);
    const coef = clipCoefficient(Math.sqrt(sq), max);
    if (Number.isNaN(coef)) return Status.NonFiniteResult;
    if (coef < 1) {
      scale(a.dw, n, coef);
      scale(a.db, a.outputs, coef);
    }
  }
  // dW = dG: one gradient serves both. First check every value (or prove them finite), then
  // write. Clipping never raises the largest |grad|.
  const m = a.maxima;
  const proven =
    plainSgdFinite(rw, m[0], m[2]) &&
    plainSgdFinite(rg, m[1], m[2]) &&
    plainSgdFinite(rb, maxAbs(a.b, a.outputs), m[3]);
  const finite =
    proven ||
    (update(rw, a.w, a.dw, n, false) && update(rg, a.g, a.dw, n, false) && update(rb, a.b, a.db, a.outputs, false));
  if (!finite) return Status.NonFiniteResult;
  update(rw, a.w, a.dw, n, true);
  update(rg, a.g, a.dw, n, true);
  update(rb, a.b, a.db, a.outputs, true);
  return Status.Ok;
}
