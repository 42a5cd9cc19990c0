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

/// Cephes `expf` minimax coefficients for `(e^r - 1 - r)/r²` on `|r| ≤ ln2/2`, highest power
/// first.
#[allow(clippy::excessive_precision)] // Cephes' published digits
pub const EXP_P: [f32; 6] =
    [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1];

/// `1/(2k+1)` for k = 1..6: `log1p(e) = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + … + s¹²/13)`.
pub const ATANH_Q: [f32; 6] = [1.0 / 3.0, 1.0 / 5.0, 1.0 / 7.0, 1.0 / 9.0, 1.0 / 11.0, 1.0 / 13.0];

/// `1.5·2²³`: for `|v| < 2²²`, `v + ROUND_MAGIC` has no fraction bits left, so the add rounds
/// `v` to an integer (ties to even, as `round_ties_even`), `(v + ROUND_MAGIC) − ROUND_MAGIC` is
/// that integer exactly, and the sum's bit pattern is `ROUND_MAGIC`'s plus it. One add instead
/// of a round and a float-to-int conversion (the SIMD form's `trunc_sat` is five instructions
/// under V8).
pub const ROUND_MAGIC: f32 = 12_582_912.0;

/// Below this, `u = 2e/(2+e)` leaves the atanh series at exactly 1 (`u²/12 < 2⁻²⁵·⁶` is below
/// half an ulp of 1), so `log1p_unit` evaluates the series at `max(u, U_FLOOR)`: the same value,
/// but its powers stay normal floats. Subnormal arithmetic is slow on x86 and WebAssembly cannot
/// flush it; without the floor every unit with `|z| ≳ 44` would compute a subnormal `u²`.
pub const U_FLOOR: f32 = 1.0 / 2048.0;

/// `exp(-a)` for `a ≥ 0` (relative error ≈ 1e-7). Exactly 1 at `a = 0`, exactly 0 for
/// `a > EXP_CUTOFF`; NaN stays NaN. The polynomial is evaluated by Estrin's scheme (two
/// independent halves, then combined): a shorter chain of dependent operations than Horner's,
/// which is what bounds the objective's speed (its loop is latency-bound).
#[inline(always)]
pub fn exp_neg(a: f32) -> f32 {
    let x = -a;
    let t = x * INV_LN_2 + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let r2 = r * r;
    let p = exp_poly(r, r2);
    let y = p * r2 + r + 1.0;
    // t's bits are ROUND_MAGIC's plus n, and n ∈ [-126, 0] whenever a ≤ EXP_CUTOFF: 2ⁿ's
    // exponent field. Otherwise (a > EXP_CUTOFF, ∞, NaN) the bits are garbage, and the result
    // is 0 or (y being NaN) NaN anyway. The SIMD form does the same wrapping integer arithmetic.
    let scale = f32::from_bits(t.to_bits().wrapping_add(127u32.wrapping_sub(ROUND_MAGIC.to_bits())) << 23);
    if a > EXP_CUTOFF {
        0.0
    } else {
        y * scale
    }
}

/// `EXP_P` at `r` (`r2 = r·r`) by Estrin's scheme: `((p₀r + p₁)·r² + (p₂r + p₃))·r² + (p₄r + p₅)`.
#[inline(always)]
pub fn exp_poly(r: f32, r2: f32) -> f32 {
    let a = EXP_P[0] * r + EXP_P[1];
    let b = EXP_P[2] * r + EXP_P[3];
    let c = EXP_P[4] * r + EXP_P[5];
    (a * r2 + b) * r2 + c
}

/// `log1p(e)` for `e ∈ [0, 1]`, via `u = 2e/(2+e) = 2s` (`s ∈ [0, 1/3]`) and the atanh series
/// in `t = s²` (relative error ≈ 1e-7). `log1p(0) = 0` and `log1p(1) = ln 2` exactly (as
/// `f32`). `2e` is exact and `u` stays normal whenever `e` is (`s` alone would be subnormal for
/// `e < 2⁻¹²⁵`).
#[inline(always)]
pub fn log1p_unit(e: f32) -> f32 {
    let u = (e + e) / (2.0 + e);
    // pmax semantics (`uc = u < F ? F : u`): NaN passes through, as in the SIMD form.
    let uc = if u < U_FLOOR { U_FLOOR } else { u };
    let h = uc * 0.5;
    u * atanh_series(h * h)
}

/// `1 + t/3 + t²/5 + … + t⁶/13` by Estrin's scheme, the small terms added first and 1 last:
/// `1 + (t/3 + ((t/5 + t²/7)·t² + ((t/9 + t²/11) + t²·t²/13)·t⁴))`. As accurate as Horner's
/// order (≤ 1.8 ulp over `e ∈ [0, 1]`, measured against `f64`) and `log1p(1)` is `ln 2` exactly;
/// grouping `1 + t/3` first instead loses both.
#[inline(always)]
pub fn atanh_series(t: f32) -> f32 {
    let t2 = t * t;
    let t4 = t2 * t2;
    let q23 = ATANH_Q[2] * t + ATANH_Q[1];
    let q45 = ATANH_Q[4] * t + ATANH_Q[3];
    let q6 = ATANH_Q[5] * t2 + q45;
    1.0 + (ATANH_Q[0] * t + (q23 * t2 + q6 * t4))
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
