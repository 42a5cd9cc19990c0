//! One parameter's update by its rule, as `torch.optim.SGD`:
//!
//! ```text
//! u = grad + λ·θ                         (only when λ ≠ 0)
//! buf = buf_ready ? μ·buf + (1-τ)·u : u  (only when μ ≠ 0)
//! u = nesterov ? u + μ·buf : buf         (only when μ ≠ 0)
//! θ ← θ - lr·u
//! ```
//!
//! Plain SGD (`λ = μ = 0`) is `θ ← θ - lr·grad`. With `write = false` nothing is stored: the
//! call only reports whether every value it would store is finite, which is how `step`
//! checks before it writes.

/// What a rule does with its parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// Untouched, buffers too.
    Frozen,
    /// `torch.optim.SGD`.
    Sgd,
    /// `torch.optim.AdamW` (Adam with decoupled weight decay): `crate::adam`.
    Adam,
}

/// A rule record (`docs/core-abi.md`, "Rule records"), without its buffer pointers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub lr: f32,
    /// SGD: L2 penalty added to the gradient. Adam: decoupled decay `θ·(1 − lr·λ)`.
    pub weight_decay: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub nesterov: bool,
    /// The momentum buffer holds a value (set by `step` after it first writes the buffer).
    pub buf_ready: bool,
    /// Adam's `1 − β₁` and `1 − β₂`, stored rather than β so that `1 − β₂ = 1e-3` is not the
    /// difference of two nearby `f32` values (PyTorch computes it in `f64`).
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    /// Adam's ε.
    pub eps: f32,
    /// Adam: updates this parameter has had; `step` advances it after each written update, and
    /// the bias corrections use the advanced count (`t = step + 1` during the update).
    pub step: u32,
}

impl Default for Rule {
    fn default() -> Self {
        Rule::FROZEN
    }
}

impl Rule {
    pub const FROZEN: Rule = Rule {
        kind: RuleKind::Frozen,
        lr: 0.0,
        weight_decay: 0.0,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        buf_ready: false,
        one_minus_beta1: 0.1,
        one_minus_beta2: 0.001,
        eps: 1e-8,
        step: 0,
    };

    /// Plain SGD with learning rate `lr`.
    pub const fn sgd(lr: f32) -> Rule {
        Rule { kind: RuleKind::Sgd, lr, ..Rule::FROZEN }
    }

    /// Adam with learning rate `lr` and PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, λ = 0).
    pub const fn adam(lr: f32) -> Rule {
        Rule { kind: RuleKind::Adam, lr, ..Rule::FROZEN }
    }

    /// The rule reads and writes a momentum buffer.
    pub fn uses_buffer(&self) -> bool {
        self.kind == RuleKind::Sgd && self.momentum != 0.0
    }
}

/// Updates `theta` from `grad` by `rule` (or, with `write = false`, only computes the update).
/// Returns `true` when every value written (or that would be written) to `theta` and `buf` is
/// finite. A frozen (or non-SGD) rule touches nothing and returns `true`. `buf` must be given, with the
/// length of `theta`, when `rule.uses_buffer()`; it is ignored otherwise. Does not change
/// `rule.buf_ready`: the caller sets it after a write.
pub fn sgd_update(theta: &mut [f32], grad: &[f32], buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
    assert!(grad.len() == theta.len());
    if rule.kind != RuleKind::Sgd {
        return true;
    }
    let buf = if rule.uses_buffer() {
        let b = buf.expect("momentum needs a buffer");
        assert!(b.len() == theta.len());
        Some(b)
    } else {
        None
    };
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return crate::simd::sgd::sgd_update(theta, grad, buf, rule, write);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::sgd_update(theta, grad, buf, rule, write)
}

pub mod scalar {
    use super::*;

    /// Same contract as [`sgd_update`](super::sgd_update) for a non-frozen rule; `buf` is
    /// `Some` exactly when `rule.uses_buffer()`.
    pub fn sgd_update(theta: &mut [f32], grad: &[f32], buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
        let Rule { lr, weight_decay: wd, momentum: mu, dampening, nesterov, buf_ready, .. } = *rule;
        let keep = 1.0 - dampening;
        // `x * 0` is NaN exactly when x is not finite.
        let mut acc = 0.0f32;
        match buf {
            None => {
                for (t, &g) in theta.iter_mut().zip(grad) {
                    let u = if wd != 0.0 { g + wd * *t } else { g };
                    let nt = *t - lr * u;
                    acc += nt * 0.0;
                    if write {
                        *t = nt;
                    }
                }
            }
            Some(buf) => {
                for ((t, &g), b) in theta.iter_mut().zip(grad).zip(buf.iter_mut()) {
                    let u = if wd != 0.0 { g + wd * *t } else { g };
                    let nb = if buf_ready { mu * *b + keep * u } else { u };
                    let u = if nesterov { u + mu * nb } else { nb };
                    let nt = *t - lr * u;
                    acc += nt * 0.0 + nb * 0.0;
                    if write {
                        *t = nt;
                        *b = nb;
                    }
                }
            }
        }
        acc == 0.0
    }
}
