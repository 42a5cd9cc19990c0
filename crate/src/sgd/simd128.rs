//! The SIMD128 flavour of the SGD update: four parameters at a time, as the scalar flavour
//! (bit-identical), the last `len % 4` too (in four-lane copies).

use core::arch::wasm32::*;

use crate::rule::Rule;
use crate::simd::{load, store};

/// As `super::scalar::sgd_update` (lengths asserted: the loop loads and stores unchecked).
///
/// The last `len % 4` parameters go through the same vector loop, copied into four-lane stack
/// arrays (zeros past them, masked out of the finiteness check) and back: one copy of the loop
/// (`chunks`, called twice) instead of a scalar body beside it (1.7 KB of module).
pub fn sgd_update(theta: &mut [f32], grad: &[f32], mut buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
    let n = theta.len();
    assert!(grad.len() == n && buf.as_ref().is_none_or(|b| b.len() == n));
    let n4 = n & !3;
    let rest = n - n4;
    let k = Constants::of(rule, buf.is_some(), write);
    let pb = buf.as_deref_mut().map_or(core::ptr::null_mut(), |b| b.as_mut_ptr());
    // SAFETY: theta, grad and (with a buffer) buf hold n4 ≥ 4·(n4/4) floats; theta and buf are
    // borrowed mutably.
    let mut bad = unsafe { chunks(theta.as_mut_ptr(), grad.as_ptr(), pb, n4 / 4, i32x4_splat(-1), &k) };
    if rest > 0 {
        let mut tail = [[0.0f32; 4]; 3]; // theta, grad, buf
        tail[0][..rest].copy_from_slice(&theta[n4..]);
        tail[1][..rest].copy_from_slice(&grad[n4..]);
        if let Some(b) = buf.as_deref() {
            tail[2][..rest].copy_from_slice(&b[n4..]);
        }
        let valid = u32x4_lt(u32x4(0, 1, 2, 3), u32x4_splat(rest as u32));
        let [t, g, b] = &mut tail;
        // SAFETY: each tail array holds 4 floats.
        bad = v128_or(bad, unsafe { chunks(t.as_mut_ptr(), g.as_ptr(), b.as_mut_ptr(), 1, valid, &k) });
        if write {
            theta[n4..].copy_from_slice(&tail[0][..rest]);
            if let Some(b) = buf {
                b[n4..].copy_from_slice(&tail[2][..rest]);
            }
        }
    }
    !v128_any_true(bad)
}

/// A rule's constants, splatted once.
struct Constants {
    lr: v128,
    wd: v128,
    mu: v128,
    keep: v128,
    decay: bool,
    buffer: bool,
    buf_ready: bool,
    nesterov: bool,
    write: bool,
}

impl Constants {
    fn of(rule: &Rule, buffer: bool, write: bool) -> Constants {
        let Rule { lr, weight_decay, momentum, dampening, nesterov, buf_ready, .. } = *rule;
        Constants {
            lr: f32x4_splat(lr),
            wd: f32x4_splat(weight_decay),
            mu: f32x4_splat(momentum),
            keep: f32x4_splat(1.0 - dampening),
            decay: weight_decay != 0.0,
            buffer,
            buf_ready,
            nesterov,
            write,
        }
    }
}

/// `count` chunks of four parameters at `pt`, `pg` (and `pb` with a buffer); returns the lanes
/// (within `valid`) where a value written, or that would be, is not finite.
///
/// # Safety
/// `pt`, `pg` and, when `k.buffer`, `pb` point at `4·count` floats; `pt` and `pb` are writable
/// and not aliased.
#[inline(never)]
unsafe fn chunks(pt: *mut f32, pg: *const f32, pb: *mut f32, count: usize, valid: v128, k: &Constants) -> v128 {
    let zero = f32x4_splat(0.0);
    let mut acc = zero;
    for c in 0..count {
        let i = 4 * c;
        // SAFETY (every load and store): i + 4 ≤ 4·count floats at each pointer (the contract).
        let t = unsafe { load(pt.add(i)) };
        let g = unsafe { load(pg.add(i)) };
        let u = if k.decay { f32x4_add(g, f32x4_mul(k.wd, t)) } else { g };
        let nt = if k.buffer {
            let nb = if k.buf_ready {
                f32x4_add(f32x4_mul(k.mu, unsafe { load(pb.add(i)) }), f32x4_mul(k.keep, u))
            } else {
                u
            };
            let u = if k.nesterov { f32x4_add(u, f32x4_mul(k.mu, nb)) } else { nb };
            let nt = f32x4_sub(t, f32x4_mul(k.lr, u));
            acc = v128_or(acc, f32x4_ne(f32x4_add(f32x4_mul(nt, zero), f32x4_mul(nb, zero)), zero));
            if k.write {
                unsafe { store(pb.add(i), nb) };
            }
            nt
        } else {
            let nt = f32x4_sub(t, f32x4_mul(k.lr, u));
            acc = v128_or(acc, f32x4_ne(f32x4_mul(nt, zero), zero));
            nt
        };
        if k.write {
            unsafe { store(pt.add(i), nt) };
        }
    }
    // `acc` gathers lanes where `x·0 ≠ 0` (x not finite) with an OR, not a sum: no add-latency
    // chain through the loop (a sum made this pass wait ~4 cycles per vector).
    v128_and(acc, valid)
}
