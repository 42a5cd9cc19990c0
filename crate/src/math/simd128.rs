//! `f32x4` forms of `math` (`mod.rs`): the same polynomials, constants and operation order,
//! so each lane equals the scalar result bit for bit.

use core::arch::wasm32::*;

use super::{ATANH_Q, EXP_CUTOFF, EXP_P, INV_LN_2, LN2_HI, LN2_LO, ROUND_MAGIC, U_FLOOR};

#[inline(always)]
fn splat(v: f32) -> v128 {
    f32x4_splat(v)
}

/// `exp(-a)` per lane, as `math::exp_neg`.
#[inline(always)]
pub fn exp_neg(a: v128) -> v128 {
    let x = f32x4_neg(a);
    let t = f32x4_add(f32x4_mul(x, splat(INV_LN_2)), splat(ROUND_MAGIC));
    let n = f32x4_sub(t, splat(ROUND_MAGIC));
    let r = f32x4_sub(f32x4_sub(x, f32x4_mul(n, splat(LN2_HI))), f32x4_mul(n, splat(LN2_LO)));
    let r2 = f32x4_mul(r, r);
    let p = exp_poly(r, r2);
    let y = f32x4_add(f32x4_add(f32x4_mul(p, r2), r), splat(1.0));
    let bias = 127u32.wrapping_sub(ROUND_MAGIC.to_bits()) as i32;
    let scale = i32x4_shl(i32x4_add(t, i32x4_splat(bias)), 23);
    let e = f32x4_mul(y, scale);
    v128_andnot(e, f32x4_gt(a, splat(EXP_CUTOFF)))
}

/// `math::exp_poly` per lane.
#[inline(always)]
fn exp_poly(r: v128, r2: v128) -> v128 {
    let a = f32x4_add(f32x4_mul(splat(EXP_P[0]), r), splat(EXP_P[1]));
    let b = f32x4_add(f32x4_mul(splat(EXP_P[2]), r), splat(EXP_P[3]));
    let c = f32x4_add(f32x4_mul(splat(EXP_P[4]), r), splat(EXP_P[5]));
    f32x4_add(f32x4_mul(f32x4_add(f32x4_mul(a, r2), b), r2), c)
}

/// `log1p(e)` for `e ∈ [0, 1]` per lane, as `math::log1p_unit`.
#[inline(always)]
pub fn log1p_unit(e: v128) -> v128 {
    let u = f32x4_div(f32x4_add(e, e), f32x4_add(splat(2.0), e));
    let h = f32x4_mul(f32x4_pmax(u, splat(U_FLOOR)), splat(0.5));
    f32x4_mul(u, atanh_series(f32x4_mul(h, h)))
}

/// `math::atanh_series` per lane.
#[inline(always)]
fn atanh_series(t: v128) -> v128 {
    let t2 = f32x4_mul(t, t);
    let t4 = f32x4_mul(t2, t2);
    let q23 = f32x4_add(f32x4_mul(splat(ATANH_Q[2]), t), splat(ATANH_Q[1]));
    let q45 = f32x4_add(f32x4_mul(splat(ATANH_Q[4]), t), splat(ATANH_Q[3]));
    let q6 = f32x4_add(f32x4_mul(splat(ATANH_Q[5]), t2), q45);
    let small = f32x4_add(f32x4_mul(q23, t2), f32x4_mul(q6, t4));
    f32x4_add(splat(1.0), f32x4_add(f32x4_mul(splat(ATANH_Q[0]), t), small))
}

/// `math::cap_bit` per lane: `1 < h ? 1 : h`, NaN kept.
#[inline(always)]
pub fn cap_bit(h: v128) -> v128 {
    f32x4_pmin(h, splat(1.0))
}

/// `math::Terms` per lane.
#[derive(Clone, Copy)]
pub struct Terms {
    pub a: v128,
    pub e: v128,
    pub inv: v128,
    pub ei: v128,
}

#[inline(always)]
pub fn terms(z: v128) -> Terms {
    let a = f32x4_abs(z);
    let e = exp_neg(a);
    let inv = f32x4_div(splat(1.0), f32x4_add(splat(1.0), e));
    let ei = f32x4_mul(e, inv);
    Terms { a, e, inv, ei }
}

/// `σ(z)` per lane.
#[inline(always)]
pub fn sigmoid(z: v128) -> v128 {
    let t = terms(z);
    v128_bitselect(t.inv, t.ei, f32x4_ge(z, splat(0.0)))
}
