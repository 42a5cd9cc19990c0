//! Scalar `exp(-a)`, `log1p(e)` on `[0, 1]` and the per-unit sigmoid terms: the reference,
//! and the constants both forms share.
//!
//! The SIMD128 forms in `simd128.rs` evaluate the same polynomials with the same operations in
//! the same order (separate multiply and add, no FMA), so scalar and SIMD give the same bits.
//! Keep the two files in step.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

pub const LN_2: f32 = core::f32::consts::LN_2;
pub const INV_LN_2: f32 = core::f32::consts::LOG2_E;

/// Cody–Waite split of ln 2: `LN2_HI` has few significant bits, so `n·LN2_HI` is exact.
#[allow(clippy::excessive_precision)] // exact in f32: 355/512
pub const LN2_HI: f32 = 0.693_359_375;
pub const LN2_LO: f32 = -2.121_944_4e-4;

/// Beyond `a = 87`, `exp(-a) < 2⁻¹²⁵·1.2`, which would need a subnormal scale: `exp_neg`
/// returns exactly 0 there (and for `a = ∞`), so `H(±1e4) = 0` and `σ(±1e4)` is exactly 0 or 1.
pub const EXP_CUTOFF: f32 = 87.0;

/// Cephes `expf` minimax coefficients for `(e^r - 1 - r)/r²` on `|r| ≤ ln2/2`.
#[allow(clippy::excessive_precision)] // Cephes' published digits
pub const EXP_P: [f32; 6] =
    [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1];

/// `1/(2k+1)` for k = 6 down to 0: `log1p(e) = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + … + s¹²/13)`,
/// the series in `s²` highest power first, as `horner` takes it.
pub const ATANH_Q: [f32; 7] = [1.0 / 13.0, 1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0];

/// `(…(c₀·x + c₁)·x + …)·x + cₙ`: one multiply, then one add, per coefficient, in that order
/// (the SIMD form in `simd128.rs` does the same, so both give the same bits).
#[inline(always)]
pub fn horner(c: &[f32], x: f32) -> f32 {
    let mut p = c[0];
    for &k in &c[1..] {
        p = p * x + k;
    }
    p
}

/// `exp(-a)` for `a ≥ 0` (relative error ≈ 1e-7). Exactly 1 at `a = 0`, exactly 0 for
/// `a > EXP_CUTOFF`; NaN stays NaN.
#[inline(always)]
pub fn exp_neg(a: f32) -> f32 {
    let x = -a;
    let n = (x * INV_LN_2).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = horner(&EXP_P, r);
    let y = p * r2 + r + 1.0;
    // n ∈ [-126, 0] whenever a ≤ EXP_CUTOFF; NaN converts to 0 (saturating, like
    // i32x4.trunc_sat_f32x4) and y is NaN anyway.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if a > EXP_CUTOFF {
        0.0
    } else {
        y * scale
    }
}

/// `log1p(e)` for `e ∈ [0, 1]`, via `s = e/(2+e) ∈ [0, 1/3]` and the atanh series (relative
/// error ≈ 1e-7). `log1p(0) = 0` and `log1p(1) = ln 2` exactly (as `f32`).
#[inline(always)]
pub fn log1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let t = s * s;
    let h = s * horner(&ATANH_Q, t);
    h + h
}

/// What one unit's `z` gives: `a = |z|`, `e = exp(-a)`, `inv = 1/(1+e)`, `ei = e/(1+e)`.
/// `σ(z) = z ≥ 0 ? inv : ei`, `σ(1-σ) = ei·inv`.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    pub a: f32,
    pub e: f32,
    pub inv: f32,
    pub ei: f32,
}

#[inline(always)]
pub fn terms(z: f32) -> Terms {
    let a = z.abs();
    let e = exp_neg(a);
    let inv = 1.0 / (1.0 + e);
    let ei = e * inv;
    Terms { a, e, inv, ei }
}

/// `σ(z) = 1/(1+exp(-z))`, stable for every `z`.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    let t = terms(z);
    if z >= 0.0 {
        t.inv
    } else {
        t.ei
    }
}

/// `h` capped at 1 bit. Next to `z = 0` the roundings of `(log1p(e) + a·e/(1+e))/ln2` can give
/// `1 + 1 ulp`, and a binary entropy never exceeds 1 bit. NaN stays NaN (the comparison is
/// false), as `f32x4_pmin` does in the SIMD form.
#[inline(always)]
pub fn cap_bit(h: f32) -> f32 {
    if h > 1.0 {
        1.0
    } else {
        h
    }
}

/// `H·ln2 = log1p(e) + a·e/(1+e)`, the binary entropy of `σ(z)` in nats.
#[inline(always)]
pub fn entropy_nats(t: &Terms) -> f32 {
    log1p_unit(t.e) + t.a * t.ei
}
