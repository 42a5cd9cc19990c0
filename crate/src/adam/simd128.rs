//! The SIMD128 flavour of the Adam update: four parameters at a time, as the scalar flavour
//! (bit-identical: the same IEEE operations, `sqrt` and `div` correctly rounded in both), the
//! last `len % 4` too (in four-lane copies).

use core::arch::wasm32::*;

use super::Scalars;
use crate::simd::{load, store};

/// As `super::scalar::adam_update` (lengths asserted: the loop loads and stores unchecked).
///
/// The last `len % 4` parameters go through the same vector body, copied into four-lane stack
/// arrays (zeros past them, masked out of the finiteness check) and back: one copy of the body
/// instead of a scalar one beside it.
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
    let rest = n - n4;
    let mut tail = [[0.0f32; 4]; 4]; // theta, grad, m, v
    tail[0][..rest].copy_from_slice(&theta[n4..]);
    tail[1][..rest].copy_from_slice(&grad[n4..]);
    tail[2][..rest].copy_from_slice(&m[n4..]);
    tail[3][..rest].copy_from_slice(&v[n4..]);
    let (pt, pg, pm, pv) = (theta.as_mut_ptr(), grad.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr());
    let mut i = 0;
    while i < n {
        // The chunk at i: in place while whole, else the tail arrays (lanes past `rest` masked).
        let (ct, cg, cm, cv, valid) = if i < n4 {
            // SAFETY: i + 4 ≤ n4: pointers into theta, grad, m and v.
            unsafe { (pt.add(i), pg.add(i), pm.add(i), pv.add(i), i32x4_splat(-1)) }
        } else {
            let [ref mut t, ref g, ref mut mm, ref mut vv] = tail;
            let lanes = u32x4(0, 1, 2, 3);
            (t.as_mut_ptr(), g.as_ptr(), mm.as_mut_ptr(), vv.as_mut_ptr(), u32x4_lt(lanes, u32x4_splat(rest as u32)))
        };
        // SAFETY (every load and store below): each pointer is at 4 floats inside theta, grad, m
        // and v (asserted lengths; the written ones borrowed mutably) or inside the tail arrays.
        let t = unsafe { load(ct) };
        let g = unsafe { load(cg) };
        let mi = unsafe { load(cm) };
        let vi = unsafe { load(cv) };
        let th = if decay { f32x4_mul(t, dc) } else { t };
        let nm = f32x4_add(f32x4_mul(b1, mi), f32x4_mul(q1, g));
        let nv = f32x4_add(f32x4_mul(b2, vi), f32x4_mul(f32x4_mul(q2, g), g));
        let denom = f32x4_add(f32x4_div(f32x4_sqrt(nv), sc2), eps);
        let nt = f32x4_sub(th, f32x4_mul(step, f32x4_div(nm, denom)));
        let check = f32x4_add(f32x4_add(f32x4_mul(nt, zero), f32x4_mul(nm, zero)), f32x4_mul(nv, zero));
        // Padding lanes (0/0 where ε = 0) are not parameters: they never count.
        acc = f32x4_add(acc, v128_and(check, valid));
        if write {
            unsafe {
                store(ct, nt);
                store(cm, nm);
                store(cv, nv);
            }
        }
        i += 4;
    }
    if write && rest > 0 {
        theta[n4..].copy_from_slice(&tail[0][..rest]);
        m[n4..].copy_from_slice(&tail[2][..rest]);
        v[n4..].copy_from_slice(&tail[3][..rest]);
    }
    i32x4_all_true(f32x4_eq(acc, zero))
}
