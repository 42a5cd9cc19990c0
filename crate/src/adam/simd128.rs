//! The SIMD128 flavour of the Adam update: four parameters at a time, as the scalar flavour
//! (bit-identical: the same IEEE operations, `sqrt` and `div` correctly rounded in both); the
//! last `len % 4` through `super::update_elements`.

use core::arch::wasm32::*;

use super::{update_elements, Scalars};
use crate::simd::{load, store};

/// As `super::scalar::adam_update` (lengths asserted: the loop loads and stores unchecked).
pub fn adam_update(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &Scalars, write: bool) -> bool {
    let n = theta.len();
    assert!(grad.len() == n && m.len() == n && v.len() == n);
    let decay = s.decay != 1.0;
    let (dc, b1, q1, b2, q2) = (
        f32x4_splat(s.decay),
        f32x4_splat(s.beta1),
        f32x4_splat(s.one_minus_beta1),
        f32x4_splat(s.beta2),
        f32x4_splat(s.one_minus_beta2),
    );
    let (step, sc2, eps) = (f32x4_splat(s.step_size), f32x4_splat(s.sqrt_c2), f32x4_splat(s.eps));
    let zero = f32x4_splat(0.0);
    let mut acc = zero;
    let n4 = n & !3;
    let (pt, pg, pm, pv) = (theta.as_mut_ptr(), grad.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    let mut i = 0;
    while i < n4 {
        // SAFETY (all loads and stores in this loop): i + 4 ≤ n4 ≤ n, the length of theta,
        // grad, m and v (asserted above); theta, m and v are borrowed mutably.
        let t = unsafe { load(pt.add(i)) };
        let g = unsafe { load(pg.add(i)) };
        let mi = unsafe { load(pm.add(i)) };
        let vi = unsafe { load(pv.add(i)) };
        let th = if decay { f32x4_mul(t, dc) } else { t };
        let nm = f32x4_add(f32x4_mul(b1, mi), f32x4_mul(q1, g));
        let nv = f32x4_add(f32x4_mul(b2, vi), f32x4_mul(f32x4_mul(q2, g), g));
        let denom = f32x4_add(f32x4_div(f32x4_sqrt(nv), sc2), eps);
        let nt = f32x4_sub(th, f32x4_mul(step, f32x4_div(nm, denom)));
        acc = f32x4_add(acc, f32x4_add(f32x4_add(f32x4_mul(nt, zero), f32x4_mul(nm, zero)), f32x4_mul(nv, zero)));
        if write {
            unsafe {
                store(pt.add(i), nt);
                store(pm.add(i), nm);
                store(pv.add(i), nv);
            }
        }
        i += 4;
    }
    let finite = i32x4_all_true(f32x4_eq(acc, zero));
    let tail = update_elements(&mut theta[n4..], &grad[n4..], &mut m[n4..], &mut v[n4..], s, write);
    finite & tail
}
