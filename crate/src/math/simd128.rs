//! `f32x4` forms of `math` (`mod.rs`): the same polynomials, constants and operation order,
//! so each lane equals the scalar result bit for bit.

use core::arch::wasm32::*;

use super::{ATANH_Q, EXP_CUTOFF, EXP_P, INV_LN_2, LN2_HI, LN2_LO};

#[inline(always)]
fn splat(v: f32) -> v128 {
    f32x4_splat(v)
}

/// `math::horner` per lane: the same multiplies and adds in the same order.
#[inline(always)]
fn horner(c: &[f32], x: v128) -> v128 {
    let mut p = splat(c[0]);
    for &k in &c[1..] {
        p = f32x4_add(f32x4_mul(p, x), splat(k));
    }
    p
}

/// `exp(-a)` per lane, as `math::exp_neg`.
#[inline(always)]
pub fn exp_neg(a: v128) -> v128 {
    let x = f32x4_neg(a);
    let n = f32x4_nearest(f32x4_mul(x, splat(INV_LN_2)));
    let r = f32x4_sub(f32x4_sub(x, f32x4_mul(n, splat(LN2_HI))), f32x4_mul(n, splat(LN2_LO)));
    let r2 = f32x4_mul(r, r);
    let p = horner(&EXP_P, r);
    let y = f32x4_add(f32x4_add(f32x4_mul(p, r2), r), splat(1.0));
    let scale = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n), i32x4_splat(127)), 23);
    let e = f32x4_mul(y, scale);
    v128_andnot(e, f32x4_gt(a, splat(EXP_CUTOFF)))
}

/// `log1p(e)` for `e ∈ [0, 1]` per lane, as `math::log1p_unit`.
#[inline(always)]
pub fn log1p_unit(e: v128) -> v128 {
    let s = f32x4_div(e, f32x4_add(splat(2.0), e));
    let t = f32x4_mul(s, s);
    let h = f32x4_mul(s, horner(&ATANH_Q, t));
    f32x4_add(h, h)
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
