//! The SIMD128 flavour of the SGD update: four parameters at a time, as the scalar flavour
//! (bit-identical); the last `len % 4` through `super::update_elements`.

use core::arch::wasm32::*;

use super::update_elements;
use crate::rule::Rule;
use crate::simd::{load, store};

/// As `super::scalar::sgd_update` (lengths asserted: the loop loads and stores unchecked).
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
    let (pt, pg) = (theta.as_mut_ptr(), grad.as_ptr());
    let mut i = 0;
    while i < n4 {
        // SAFETY (all loads and stores in this loop): i + 4 ≤ n4 ≤ n, the length of theta,
        // grad and buf (asserted above); theta and buf are borrowed mutably.
        let t = unsafe { load(pt.add(i)) };
        let g = unsafe { load(pg.add(i)) };
        let u = if decay { f32x4_add(g, f32x4_mul(wd, t)) } else { g };
        let nt = match buf.as_deref_mut() {
            None => {
                let nt = f32x4_sub(t, f32x4_mul(lr, u));
                acc = v128_or(acc, f32x4_ne(f32x4_mul(nt, zero), zero));
                nt
            }
            Some(b) => {
                let pb = b.as_mut_ptr();
                let nb = if buf_ready {
                    f32x4_add(f32x4_mul(mu, unsafe { load(pb.add(i)) }), f32x4_mul(keep, u))
                } else {
                    u
                };
                let u = if nesterov { f32x4_add(u, f32x4_mul(mu, nb)) } else { nb };
                let nt = f32x4_sub(t, f32x4_mul(lr, u));
                acc = v128_or(acc, f32x4_ne(f32x4_add(f32x4_mul(nt, zero), f32x4_mul(nb, zero)), zero));
                if write {
                    unsafe { store(pb.add(i), nb) };
                }
                nt
            }
        };
        if write {
            unsafe { store(pt.add(i), nt) };
        }
        i += 4;
    }
    // `acc` gathers lanes where `x·0 ≠ 0` (x not finite) with an OR, not a sum: no add-latency
    // chain through the loop (a sum made this pass wait ~4 cycles per vector).
    let finite = !v128_any_true(acc);
    let tail = update_elements(&mut theta[n4..], &grad[n4..], buf.map(|b| &mut b[n4..]), rule, write);
    finite & tail
}
