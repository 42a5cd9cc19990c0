//! Gradient-norm clipping inside the fused step, as `torch.nn.utils.clip_grad_norm_`:
//!
//! ```text
//! norm = √(Σ over the updated parameters of |grad|²)
//! coef = min(max_norm / (norm + 1e-6), 1);   grad ← coef·grad
//! ```
//!
//! `w` and `g` share one gradient `dw` but are separate parameters, so `|dw|²` counts once for
//! each of them that is updated: `norm² = |dw|²·(updated among w, g) + |db|²·(b updated)`.
//! The sum runs in `f64` (it cannot overflow for `f32` gradients); a non-finite norm is
//! status 4 and nothing is written, where PyTorch would scale by NaN.

/// `Σ vᵢ²` in `f64`, in index order (the JS mirror sums in the same order).
pub fn sum_squares(v: &[f32]) -> f64 {
    let mut s = 0.0f64;
    for &x in v {
        let x = x as f64;
        s += x * x;
    }
    s
}

/// The factor PyTorch multiplies the gradients by: `min(max_norm / (norm + 1e-6), 1)`, or
/// `None` when `norm` is not finite.
pub fn coefficient(norm: f64, max_norm: f32) -> Option<f32> {
    if !norm.is_finite() {
        return None;
    }
    Some((max_norm as f64 / (norm + 1e-6)).min(1.0) as f32)
}

/// `v ← c·v`.
pub fn scale(v: &mut [f32], c: f32) {
    for x in v {
        *x *= c;
    }
}
