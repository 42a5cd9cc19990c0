//! One parameter's Adam update with decoupled weight decay, as `torch.optim.AdamW` (which is
//! `torch.optim.Adam(..., decoupled_weight_decay=True)`), for step `t = rule.step + 1`:
//!
//! ```text
//! θ ← θ·(1 − lr·λ)                       (only when λ ≠ 0)
//! m ← β₁·m + (1 − β₁)·g
//! v ← β₂·v + (1 − β₂)·g·g
//! θ ← θ − (lr/c₁)·m / (√v/√c₂ + ε)       c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ
//! ```
//!
//! in PyTorch's order of operations (`_single_tensor_adam`): decay first, then the moments,
//! then `addcdiv`. The per-call scalars (`lr/c₁`, `√c₂`, `1 − lr·λ`) are computed once in
//! `f64`, as PyTorch computes them in Python floats. With `write = false` nothing is stored:
//! the call only reports whether every value it would store is finite (`step` checks before
//! it writes). The caller advances the rule's step count after a successful step.
//!
//! Flavours: `scalar.rs` (`update_elements` over every element), `simd128.rs` (four at a time,
//! `update_elements` for the tail); `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::rule::{Rule, RuleKind};

/// `base^n` by repeated squaring: the same operations in the same order as the JS kernels
/// (`ts/kernels/adam.ts`), so both backends get the same bias corrections bit for bit.
pub fn pow_u32(mut base: f64, mut n: u32) -> f64 {
    let mut r = 1.0;
    while n > 0 {
        if n & 1 == 1 {
            r *= base;
        }
        base *= base;
        n >>= 1;
    }
    r
}

/// The per-call scalars of one parameter's update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scalars {
    /// `1 − lr·λ`, or exactly 1 when λ = 0 (then the multiply is skipped).
    pub decay: f32,
    pub beta1: f32,
    pub one_minus_beta1: f32,
    pub beta2: f32,
    pub one_minus_beta2: f32,
    /// `lr / c₁`.
    pub step_size: f32,
    /// `√c₂`.
    pub sqrt_c2: f32,
    pub eps: f32,
}

impl Scalars {
    pub fn of(rule: &Rule) -> Scalars {
        let t = rule.step.saturating_add(1);
        let (q1, q2) = (rule.one_minus_beta1 as f64, rule.one_minus_beta2 as f64);
        // 1 − q is exact in f64 for an f32 q, so c = 1 − (1 − q)ᵗ keeps q's precision.
        let c1 = 1.0 - pow_u32(1.0 - q1, t);
        let c2 = 1.0 - pow_u32(1.0 - q2, t);
        let lr = rule.lr as f64;
        Scalars {
            decay: if rule.weight_decay != 0.0 { (1.0 - lr * rule.weight_decay as f64) as f32 } else { 1.0 },
            beta1: (1.0 - q1) as f32,
            one_minus_beta1: rule.one_minus_beta1,
            beta2: (1.0 - q2) as f32,
            one_minus_beta2: rule.one_minus_beta2,
            step_size: (lr / c1) as f32,
            sqrt_c2: c2.sqrt() as f32,
            eps: rule.eps,
        }
    }
}

/// `adam_update`'s contract: `grad`, `m` and `v` as long as `theta`. Returns the scalars a
/// flavour gets, or `None` when the rule is not Adam (nothing to do).
pub fn check(theta: &[f32], grad: &[f32], m: &[f32], v: &[f32], rule: &Rule) -> Option<Scalars> {
    let n = theta.len();
    assert!(grad.len() == n && m.len() == n && v.len() == n);
    (rule.kind == RuleKind::Adam).then(|| Scalars::of(rule))
}

/// The update one element at a time: the scalar flavour, and the SIMD flavour's tail. `true`
/// when every value written (or that would be written) to `theta`, `m` and `v` is finite.
#[inline]
pub fn update_elements(
    theta: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    s: &Scalars,
    write: bool,
) -> bool {
    let decay = s.decay != 1.0;
    // `x * 0` is NaN exactly when x is not finite.
    let mut acc = 0.0f32;
    for (((t, &g), mi), vi) in theta.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
        let th = if decay { *t * s.decay } else { *t };
        let nm = s.beta1 * *mi + s.one_minus_beta1 * g;
        let nv = s.beta2 * *vi + s.one_minus_beta2 * g * g;
        let denom = nv.sqrt() / s.sqrt_c2 + s.eps;
        let nt = th - s.step_size * (nm / denom);
        acc += nt * 0.0 + nm * 0.0 + nv * 0.0;
        if write {
            *t = nt;
            *mi = nm;
            *vi = nv;
        }
    }
    acc == 0.0
}
