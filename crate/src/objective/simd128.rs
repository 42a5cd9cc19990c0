//! The SIMD128 flavour of the objective: four units at a time, as the scalar flavour (per-unit
//! values, `d` included, are bit-identical; the f64 sums add lanes in a different order, so they
//! agree to rounding). The last `len % 4` units go through `super::unit`.

use core::arch::wasm32::*;

use super::{check, units_from, LossCoefficients, Sums, Totals, UnitConstants, UnitOutputs};
use crate::math::simd128 as math;
use crate::math::INV_LN_2;
use crate::simd::{load, store};

/// As `super::scalar::objective` (lengths asserted: the loop loads and stores unchecked).
pub fn objective(z: &[f32], d: &mut [f32], y: Option<&[f32]>, lc: &LossCoefficients, mut out: UnitOutputs) -> Totals {
    let n = z.len();
    let c = UnitConstants::new(lc);
    let targets = if c.cross_entropy != 0.0 { y } else { None };
    check(z, d, targets, &out);
    let (ae, ac, kc, k) = (
        f32x4_splat(c.entropy),
        f32x4_splat(c.cross_entropy),
        f32x4_splat(c.cross_entropy_per_nat),
        f32x4_splat(c.delta_scale),
    );
    let (zero, one, inv_ln2) = (f32x4_splat(0.0), f32x4_splat(1.0), f32x4_splat(INV_LN_2));
    let (mut loss2, mut ent2) = (f64x2_splat(0.0), f64x2_splat(0.0));
    let mut bad = i32x4_splat(0);
    let n4 = n & !3;
    let mut i = 0;
    while i < n4 {
        // SAFETY (all loads and stores in this loop): i + 4 ≤ n4 ≤ n, the length of z, d,
        // targets and every output (asserted above); outputs are borrowed mutably.
        let zv = unsafe { load(z.as_ptr().add(i)) };
        let y = match targets {
            Some(t) => {
                let y = unsafe { load(t.as_ptr().add(i)) };
                bad = v128_or(bad, v128_or(f32x4_lt(y, zero), f32x4_gt(y, one)));
                y
            }
            None => zero,
        };
        let t = math::terms(zv);
        let dv = v128_bitselect(t.inv, t.ei, f32x4_ge(zv, zero));
        unsafe { store(d.as_mut_ptr().add(i), dv) };
        let l1p = math::log1p_unit(t.e);
        let h = math::cap_bit(f32x4_mul(f32x4_add(l1p, f32x4_mul(t.a, t.ei)), inv_ln2));
        let zpos = v128_and(zv, f32x4_gt(zv, zero));
        let ce = f32x4_sub(f32x4_add(zpos, l1p), f32x4_mul(y, zv));
        let loss = f32x4_add(f32x4_mul(ae, h), f32x4_mul(kc, ce));
        let g = f32x4_sub(f32x4_mul(ac, f32x4_sub(dv, y)), f32x4_mul(ae, f32x4_mul(zv, f32x4_mul(t.ei, t.inv))));
        if let Some(o) = out.delta.as_deref_mut() {
            unsafe { store(o.as_mut_ptr().add(i), f32x4_mul(k, g)) };
        }
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
    let mut sums = Sums {
        loss: f64x2_extract_lane::<0>(loss2) + f64x2_extract_lane::<1>(loss2),
        entropy: f64x2_extract_lane::<0>(ent2) + f64x2_extract_lane::<1>(ent2),
        out_of_range: v128_any_true(bad),
    };
    units_from(n4, z, d, targets, &c, &mut out, &mut sums);
    sums.totals(lc)
}
