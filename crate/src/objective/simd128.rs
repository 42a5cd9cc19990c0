//! The SIMD128 flavour of the objective: four units at a time, as the scalar flavour (per-unit
//! values, `d` included, are bit-identical; the f64 sums add lanes in a different order, so they
//! agree to rounding). The last `len % 4` units go through `super::unit`.

use core::arch::wasm32::*;

use super::{check, units_from, LossCoefficients, Sums, Totals, UnitConstants, UnitOutputs};
use crate::math::simd128 as math;
use crate::math::INV_LN_2;
use crate::simd::{load, store};

/// Units per block of the two passes: their `e` and `e/(1+e)` wait in two stack arrays of this
/// many floats between the passes.
const BLOCK: usize = 64;

/// As `super::scalar::objective` (lengths asserted: the loop loads and stores unchecked).
///
/// Each block of `BLOCK` units takes two passes: the first computes `e = exp(-|z|)`, `σ` and
/// `δ`; the second `log1p(e)`, `H`, the loss and the sums. One pass doing both was
/// latency-bound: the chain exp → divide → log1p polynomial of one vector was longer than the
/// processor's window of independent work (measured: 4.4 ns per unit in one pass, 2.3 in two).
/// Without a cross-entropy term (`αC = 0`, the entropy objective) the loops skip the targets and
/// the cross-entropy (measured: 25 % faster), with the same bits (see `run`).
pub fn objective(z: &[f32], d: &mut [f32], y: Option<&[f32]>, lc: &LossCoefficients, mut out: UnitOutputs) -> Totals {
    let n = z.len();
    let c = UnitConstants::new(lc);
    let targets = if c.cross_entropy != 0.0 { y } else { None };
    check(z, d, targets, &out);
    let n4 = n & !3;
    let mut sums = match targets {
        Some(t) => run::<true>(&z[..n4], &mut d[..n4], t, &c, &mut out),
        None => run::<false>(&z[..n4], &mut d[..n4], &[], &c, &mut out),
    };
    units_from(n4, z, d, targets, &c, &mut out, &mut sums);
    sums.totals(lc)
}

/// The two passes over `z` (a multiple of 4 units). `CE`: `αC ≠ 0` and `y` holds the targets.
/// Without it `y` is not read and the cross-entropy terms reduce to what they are in
/// `super::unit` with `αC = ±0`, `y = 0`, bit for bit: for finite `z`, `σ ≥ 0` and `CE ≥ 0` are
/// finite, so `αC·(σ − 0)` and `(αC/ln2)·CE` are zeros with the sign of `αC` (and of `αC/ln2`),
/// i.e. the coefficients themselves; for non-finite `z`, `H` and `σ(1−σ)` are NaN and so are
/// both forms.
#[inline(always)]
fn run<const CE: bool>(z: &[f32], d: &mut [f32], y: &[f32], c: &UnitConstants, out: &mut UnitOutputs) -> Sums {
    let n4 = z.len();
    let (ae, ac, kc, k) = (
        f32x4_splat(c.entropy),
        f32x4_splat(c.cross_entropy),
        f32x4_splat(c.cross_entropy_per_nat),
        f32x4_splat(c.delta_scale),
    );
    let (zero, one, inv_ln2) = (f32x4_splat(0.0), f32x4_splat(1.0), f32x4_splat(INV_LN_2));
    let (mut loss2, mut ent2) = (f64x2_splat(0.0), f64x2_splat(0.0));
    let mut bad = i32x4_splat(0);
    let mut e_of = [0.0f32; BLOCK];
    let mut ei_of = [0.0f32; BLOCK];
    // SAFETY (every load and store below): i + 4 ≤ n4, the length of z, d, every output and,
    // with CE, of y (checked by the caller), and i - i0 + 4 ≤ BLOCK, the length of e_of and ei_of;
    // outputs are borrowed mutably.
    let target = |i: usize| if CE { unsafe { load(y.as_ptr().add(i)) } } else { zero };
    let mut i0 = 0;
    while i0 < n4 {
        let i1 = (i0 + BLOCK).min(n4);
        let mut i = i0;
        while i < i1 {
            let zv = unsafe { load(z.as_ptr().add(i)) };
            let t = math::terms(zv);
            let dv = v128_bitselect(t.inv, t.ei, f32x4_ge(zv, zero));
            unsafe { store(d.as_mut_ptr().add(i), dv) };
            if let Some(o) = out.delta.as_deref_mut() {
                let s = f32x4_mul(ae, f32x4_mul(zv, f32x4_mul(t.ei, t.inv)));
                let g = if CE {
                    let yv = target(i);
                    bad = v128_or(bad, v128_or(f32x4_lt(yv, zero), f32x4_gt(yv, one)));
                    f32x4_sub(f32x4_mul(ac, f32x4_sub(dv, yv)), s)
                } else {
                    f32x4_sub(ac, s)
                };
                unsafe { store(o.as_mut_ptr().add(i), f32x4_mul(k, g)) };
            } else if CE {
                let yv = target(i);
                bad = v128_or(bad, v128_or(f32x4_lt(yv, zero), f32x4_gt(yv, one)));
            }
            unsafe {
                store(e_of.as_mut_ptr().add(i - i0), t.e);
                store(ei_of.as_mut_ptr().add(i - i0), t.ei);
            }
            i += 4;
        }
        let mut i = i0;
        while i < i1 {
            let zv = unsafe { load(z.as_ptr().add(i)) };
            let (e, ei) = unsafe { (load(e_of.as_ptr().add(i - i0)), load(ei_of.as_ptr().add(i - i0))) };
            let l1p = math::log1p_unit(e);
            let h = math::cap_bit(f32x4_mul(f32x4_add(l1p, f32x4_mul(f32x4_abs(zv), ei)), inv_ln2));
            let loss = if CE {
                let zpos = v128_and(zv, f32x4_gt(zv, zero));
                let ce = f32x4_sub(f32x4_add(zpos, l1p), f32x4_mul(target(i), zv));
                f32x4_add(f32x4_mul(ae, h), f32x4_mul(kc, ce))
            } else {
                f32x4_add(f32x4_mul(ae, h), kc)
            };
            if let Some(o) = out.entropy.as_deref_mut() {
                unsafe { store(o.as_mut_ptr().add(i), h) };
            }
            if let Some(o) = out.loss.as_deref_mut() {
                unsafe { store(o.as_mut_ptr().add(i), loss) };
            }
            loss2 = f64x2_add(
                loss2,
                f64x2_add(f64x2_promote_low_f32x4(loss), f64x2_promote_low_f32x4(i64x2_shuffle::<1, 1>(loss, loss))),
            );
            ent2 = f64x2_add(
                ent2,
                f64x2_add(f64x2_promote_low_f32x4(h), f64x2_promote_low_f32x4(i64x2_shuffle::<1, 1>(h, h))),
            );
            i += 4;
        }
        i0 = i1;
    }
    Sums {
        loss: f64x2_extract_lane::<0>(loss2) + f64x2_extract_lane::<1>(loss2),
        entropy: f64x2_extract_lane::<0>(ent2) + f64x2_extract_lane::<1>(ent2),
        out_of_range: v128_any_true(bad),
    }
}
