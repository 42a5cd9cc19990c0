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
//!
//! Flavours: `scalar.rs` (`update_elements` over every element), `simd128.rs` (four at a time,
//! `update_elements` for the tail); `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::rule::{Rule, RuleKind};

/// `sgd_update`'s contract: `grad` as long as `theta`, and for an SGD rule with momentum a
/// buffer as long too. Returns what a flavour gets: `None` when the rule is not SGD (nothing to
/// do), else the buffer the rule uses (`Some(None)` without momentum).
pub fn check<'a>(
    theta: &[f32],
    grad: &[f32],
    buf: Option<&'a mut [f32]>,
    rule: &Rule,
) -> Option<Option<&'a mut [f32]>> {
    assert!(grad.len() == theta.len());
    if rule.kind != RuleKind::Sgd {
        return None;
    }
    if !rule.uses_buffer() {
        return Some(None);
    }
    let b = buf.expect("momentum needs a buffer");
    assert!(b.len() == theta.len());
    Some(Some(b))
}

/// The update one element at a time: the scalar flavour, and the SIMD flavour's tail. `buf` is
/// `Some` exactly when the rule uses a buffer; returns `true` when every value written (or that
/// would be written) is finite.
#[inline]
pub fn update_elements(theta: &mut [f32], grad: &[f32], buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
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
