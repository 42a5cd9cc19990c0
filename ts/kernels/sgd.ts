// One parameter's SGD update, as torch.optim.SGD:
//   u = grad + λ·θ
//   with momentum μ: buf = ready ? μ·buf + (1-τ)·u : u;  u = nesterov ? u + μ·buf : buf
//   θ ← θ - lr·u
// With μ = 0 and λ = 0 this is exactly the seed's rule θ ← θ - η·∂loss/∂θ.

import type { RuleOf } from "../core/types.js";

/** One parameter's update rule as the kernels take it: the core's rule record, counters
 *  included (input only: the optimizer advances them after a successful step). */
export interface Rule extends RuleOf<Float32Array> {
  /** False until the first update has written buf. */
  bufReady: boolean;
  /** Adam: updates this parameter has had. */
  step: number;
}

/**
 * Updates `n` values of theta by the rule. With write = false nothing is written and
 * the return value tells whether every value the update would write is finite: the step
 * runs it once to check, then once to write, so a failing step changes nothing.
 */
export function sgdUpdate(theta: Float32Array, grad: Float32Array, n: number, rule: Rule, write: boolean): boolean {
  const { lr, weightDecay: wd, momentum: mu, nesterov } = rule;
  const buf = mu !== 0 ? rule.buf : null;
  const keep = 1 - rule.dampening;
  const ready = rule.bufReady;
  let check = 0;
  for (let i = 0; i < n; i++) {
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
