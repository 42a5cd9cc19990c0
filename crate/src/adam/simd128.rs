//! The SIMD128 flavour of the Adam update: four parameters at a time, as the scalar flavour
//! (bit-identical: the same IEEE operations, `sqrt` and `div` correctly rounded in both), the
//! last `len % 4` too (in four-lane copies).

use core::arch::wasm32::*;

use super::Scalars;
use crate::simd::{load, store};

/// As `super::scalar::adam_update` (lengths asserted: the loop loads and stores unchecked).
///
/// The last `len % 4` parameters go through the same vector loop, copied into four-lane stack
/// arrays (zeros past them, masked out of the finiteness check) and back: one copy of the loop
/// (`chunks`, called twice) instead of a scalar body beside it.
pub fn adam_update(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &Scalars, write: bool) -> bool {
    let n = theta.len();
    assert!(grad.len() == n && m.len() == n && v.len() == n);
    let n4 = n & !3;
    let rest = n - n4;
    // SAFETY: theta, grad, m and v hold at least n4 floats; theta, m and v are borrowed mutably.
    let mut bad = unsafe {
        chunks(theta.as_mut_ptr(), grad.as_ptr(), m.as_mut_ptr(), v.as_mut_ptr(), n4 / 4, i32x4_splat(-1), s, write)
    };
    if rest > 0 {
        let mut tail = [[0.0f32; 4]; 4]; // theta, grad, m, v
        tail[0][..rest].copy_from_slice(&theta[n4..]);
        tail[1][..rest].copy_from_slice(&grad[n4..]);
        tail[2][..rest].copy_from_slice(&m[n4..]);
        tail[3][..rest].copy_from_slice(&v[n4..]);
        let valid = u32x4_lt(u32x4(0, 1, 2, 3), u32x4_splat(rest as u32));
        let [t, g, mm, vv] = &mut tail;
        // SAFETY: each tail array holds 4 floats.
        bad = v128_or(bad, unsafe {
            chunks(t.as_mut_ptr(), g.as_ptr(), mm.as_mut_ptr(), vv.as_mut_ptr(), 1, valid, s, write)
        });
        if write {
            theta[n4..].copy_from_slice(&tail[0][..rest]);
            m[n4..].copy_from_slice(&tail[2][..rest]);
            v[n4..].copy_from_slice(&tail[3][..rest]);
        }
    }
    !v128_any_true(bad)
}

/// `count` chunks of four parameters; returns the lanes (within `valid`) where a value written,
/// or that would be, is not finite.
///
/// # Safety
/// `pt`, `pg`, `pm`, `pv` point at `4·count` floats; `pt`, `pm`, `pv` are writable and not
/// aliased.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn chunks(
    pt: *mut f32,
    pg: *const f32,
    pm: *mut f32,
    pv: *mut f32,
    count: usize,
    valid: v128,
    s: &Scalars,
    write: bool,
) -> v128 {
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
    for c in 0..count {
        let i = 4 * c;
        // SAFETY (every load and store): i + 4 ≤ 4·count floats at each pointer (the contract).
        let t = unsafe { load(pt.add(i)) };
        let g = unsafe { load(pg.add(i)) };
        let mi = unsafe { load(pm.add(i)) };
        let vi = unsafe { load(pv.add(i)) };
        let th = if decay { f32x4_mul(t, dc) } else { t };
        let nm = f32x4_add(f32x4_mul(b1, mi), f32x4_mul(q1, g));
        let nv = f32x4_add(f32x4_mul(b2, vi), f32x4_mul(f32x4_mul(q2, g), g));
        let denom = f32x4_add(f32x4_div(f32x4_sqrt(nv), sc2), eps);
        let nt = f32x4_sub(th, f32x4_mul(step, f32x4_div(nm, denom)));
        // Lanes where x·0 ≠ 0 (x not finite), by OR (no add chain through the loop).
        let check = f32x4_add(f32x4_add(f32x4_mul(nt, zero), f32x4_mul(nm, zero)), f32x4_mul(nv, zero));
        acc = v128_or(acc, f32x4_ne(check, zero));
        if write {
            unsafe {
                store(pt.add(i), nt);
                store(pm.add(i), nm);
                store(pv.add(i), nv);
            }
        }
    }
    // Padding lanes (0/0 where ε = 0) are not parameters: they never count.
    v128_and(acc, valid)
}
