//! Binary entropy of `σ(z)` in bits, stable for every finite `z`.
//!
//! With `a = |z|`, `e = exp(-a)`: `H·ln2 = log1p(e) + a·e/(1+e)`. It is 1 at `z = 0` (exactly),
//! decays like `(a+1)·e^{-a}/ln2`, and is exactly 0 once `e` underflows (`|z| > 87`); it never
//! gives NaN or ∞ for a finite `z`. The vectorised form lives in `math::simd128`.

use crate::math::{cap_bit, entropy_nats, terms, INV_LN_2};

/// `H(σ(z))` in bits.
#[inline]
pub fn entropy_bits(z: f32) -> f32 {
    cap_bit(entropy_nats(&terms(z)) * INV_LN_2)
}
