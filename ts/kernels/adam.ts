// One parameter's Adam update with decoupled weight decay, as torch.optim.AdamW, mirroring
// crate/src/adam.rs operation for operation: every float32 operation of the Rust kernel is one
// Math.fround here (exact: a double holds an f32 product, sum, quotient or square root before
// it is rounded), so this backend gives the WebAssembly ones' bits. For t = rule.step + 1:
//   θ ← θ·(1 − lr·λ)                      (only when λ ≠ 0)
//   m ← β₁·m + (1 − β₁)·g
//   v ← β₂·v + (1 − β₂)·g·g
//   θ ← θ − (lr/c₁)·(m / (√v/√c₂ + ε))    c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ

import type { Rule } from "./sgd.js";

const f = Math.fround;

/** base^n by repeated squaring, as adam::pow_u32 (same operations, same bits). */
export function powU32(base: number, n: number): number {
  let r = 1;
  while (n > 0) {
    if (n & 1) r *= base;
    base *= base;
    n >>>= 1;
  }
  return r;
}

/** The per-call scalars of adam::Scalars::of, from the f32 values of the rule record. */
export interface AdamScalars {
  decay: number;
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  stepSize: number;
  sqrtC2: number;
  eps: number;
}

export function adamScalars(rule: Rule): AdamScalars {
  const t = Math.min(rule.step + 1, 0xffffffff);
  const q1 = f(rule.oneMinusBeta1),
    q2 = f(rule.oneMinusBeta2);
  const c1 = 1 - powU32(1 - q1, t);
  const c2 = 1 - powU32(1 - q2, t);
  const lr = f(rule.lr),
    wd = f(rule.weightDecay);
  return {
    decay: wd !== 0 ? f(1 - lr * wd) : 1,
    beta1: f(1 - q1),
    oneMinusBeta1: q1,
    beta2: f(1 - q2),
    oneMinusBeta2: q2,
    stepSize: f(lr / c1),
    sqrtC2: f(Math.sqrt(c2)),
    eps: f(rule.eps),
  };
}

/**
 * Updates `n` values of theta, m (rule.expAvg) and v (rule.expAvgSq) by an Adam rule.
 * With write = false nothing is written and the return value tells whether every value the
 * update would write is finite. The optimizer advances its step count after a successful step.
 */
export function adamUpdate(theta: Float32Array, grad: Float32Array, n: number, rule: Rule, write: boolean): boolean {
  const m = rule.expAvg as Float32Array,
    v = rule.expAvgSq as Float32Array;
  const s = adamScalars(rule);
  const decay = s.decay !== 1;
  let check = 0;
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    const th = decay ? f(theta[i] * s.decay) : theta[i];
    const nm = f(f(s.beta1 * m[i]) + f(s.oneMinusBeta1 * g));
    const nv = f(f(s.beta2 * v[i]) + f(f(s.oneMinusBeta2 * g) * g));
    const denom = f(f(f(Math.sqrt(nv)) / s.sqrtC2) + s.eps);
    const nt = f(th - f(s.stepSize * f(nm / denom)));
    check += nt * 0 + nm * 0 + nv * 0; // NaN as soon as any value is NaN or ±Infinity
    if (write) {
      theta[i] = nt;
      m[i] = nm;
      v[i] = nv;
    }
  }
  return check === 0;
}
