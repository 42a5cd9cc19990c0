// One parameter's SGD update, as torch.optim.SGD:
//   u = grad + λ·θ
//   with momentum μ: buf = ready ? μ·buf + (1-τ)·u : u;  u = nesterov ? u + μ·buf : buf
//   θ ← θ - lr·u
// With μ = 0 and λ = 0 this is exactly the seed's rule θ ← θ - η·∂loss/∂θ.

import type { RuleKind } from "../core/abi.js";

/** One parameter's update rule: the JS mirror of the core's rule record (input only: the
 *  optimizer advances bufReady and step after a successful step). */
export interface Rule {
  kind: RuleKind;
  lr: number;
  /** SGD: L2 penalty added to the gradient. Adam: decoupled decay θ·(1 − lr·λ). */
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** Momentum buffer (same length as the parameter), or null when momentum is 0. */
  buf: Float32Array | null;
  /** False until the first update has written buf. */
  bufReady: boolean;
  /** Adam: 1 − β₁, 1 − β₂ and ε. */
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  eps: number;
  /** Adam: first and second moments (same length as the parameter), or null. */
  expAvg: Float32Array | null;
  expAvgSq: Float32Array | null;
  /** Adam: updates this parameter has had. */
  step: number;
}

/**
 * Updates `length` values of theta by the rule. With write = false nothing is written and
 * the return value tells whether every value the update would write is finite: the step
 * runs it once to check, then once to write, so a failing step changes nothing.
 */
export function sgdUpdate(
  theta: Float32Array,
  grad: Float32Array,
  length: number,
  rule: Rule,
  write: boolean,
): boolean {
  const { lr, weightDecay: wd, momentum: mu, nesterov } = rule;
  const buf = mu !== 0 ? rule.buf : null;
  const keep = 1 - rule.dampening;
  const ready = rule.bufReady;
  let check = 0;
  for (let i = 0; i < length; i++) {
    const t = theta[i];
    let u = grad[i] + wd * t;
    if (buf !== null) {
      const m = Math.fround(ready ? mu * buf[i] + keep * u : u);
      check += m * 0;
      if (write) buf[i] = m;
      u = nesterov ? u + mu * m : m;
    }
    const next = Math.fround(t - lr * u);
    check += next * 0; // NaN as soon as any value is NaN or ±Infinity
    if (write) theta[i] = next;
  }
  return check === 0;
}
