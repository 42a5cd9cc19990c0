//! The SIMD128 flavour of the SGD update: four parameters at a time, as the scalar flavour
//! (bit-identical), the last `len % 4` too (in four-lane copies).

use core::arch::wasm32::*;

use crate::rule::Rule;
use crate::simd::{load, store};

/// As `super::scalar::sgd_update` (lengths asserted: the loop loads and stores unchecked).
///
/// The last `len % 4` parameters go through the same vector body, copied into four-lane stack
/// arrays (zeros past them, masked out of the finiteness check) and back: one copy of the body
/// instead of a scalar one beside it (1.7 KB of module).
pub fn sgd_update(theta: &mut [f32], grad: &[f32], mut buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
    let n = theta.len();
    assert!(grad.len() == n && buf.as_ref().is_none_or(|b| b.len() == n));
    let Rule { lr, weight_decay, momentum, dampening, nesterov, buf_ready, .. } = *rule;
    let (lr, wd, mu, keep) =
        (f32x4_splat(lr), f32x4_splat(weight_decay), f32x4_splat(momentum), f32x4_splat(1.0 - dampening));
    let decay = weight_decay != 0.0;
    let zero = f32x4_splat(0.0);
    let mut acc = zero;
    let n4 = n & !3;
    let rest = n - n4;
    let mut tail = [[0.0f32; 4]; 3]; // theta, grad, buf
    tail[0][..rest].copy_from_slice(&theta[n4..]);
    tail[1][..rest].copy_from_slice(&grad[n4..]);
    if let Some(b) = buf.as_deref() {
        tail[2][..rest].copy_from_slice(&b[n4..]);
    }
    let has_buf = buf.is_some();
    let (pt, pg) = (theta.as_mut_ptr(), grad.as_ptr());
    let pb = buf.as_deref_mut().map_or(core::ptr::null_mut(), |b| b.as_mut_ptr());
    let mut i = 0;
    while i < n {
        // The chunk at i: in place while whole, else the tail arrays (lanes past `rest` masked).
        let whole = i < n4;
        let (ct, cg, cb, valid) = if whole {
            // SAFETY: i + 4 ≤ n4: pointers into theta, grad and (with a buffer) buf.
            unsafe { (pt.add(i), pg.add(i), pb.wrapping_add(i), i32x4_splat(-1)) }
        } else {
            let lanes = u32x4(0, 1, 2, 3);
            let [ref mut t, ref g, ref mut b] = tail;
            (t.as_mut_ptr(), g.as_ptr(), b.as_mut_ptr(), u32x4_lt(lanes, u32x4_splat(rest as u32)))
        };
        // SAFETY (every load and store below): ct, cg (and cb with a buffer) point at 4 floats:
        // inside theta, grad and buf (asserted lengths), which are borrowed mutably, or inside
        // the tail arrays.
        let t = unsafe { load(ct) };
        let g = unsafe { load(cg) };
        let u = if decay { f32x4_add(g, f32x4_mul(wd, t)) } else { g };
        let nt = if has_buf {
            let nb = if buf_ready { f32x4_add(f32x4_mul(mu, unsafe { load(cb) }), f32x4_mul(keep, u)) } else { u };
            let u = if nesterov { f32x4_add(u, f32x4_mul(mu, nb)) } else { nb };
            let nt = f32x4_sub(t, f32x4_mul(lr, u));
            let bad = f32x4_ne(f32x4_add(f32x4_mul(nt, zero), f32x4_mul(nb, zero)), zero);
            acc = v128_or(acc, v128_and(bad, valid));
            if write {
                unsafe { store(cb, nb) };
            }
            nt
        } else {
            let nt = f32x4_sub(t, f32x4_mul(lr, u));
            acc = v128_or(acc, v128_and(f32x4_ne(f32x4_mul(nt, zero), zero), valid));
            nt
        };
        if write {
            unsafe { store(ct, nt) };
        }
        i += 4;
    }
    if write && rest > 0 {
        theta[n4..].copy_from_slice(&tail[0][..rest]);
        if let Some(b) = buf {
            b[n4..].copy_from_slice(&tail[2][..rest]);
        }
    }
    // `acc` gathers lanes where `x·0 ≠ 0` (x not finite) with an OR, not a sum: no add-latency
    // chain through the loop (a sum made this pass wait ~4 cycles per vector).
    !v128_any_true(acc)
}
