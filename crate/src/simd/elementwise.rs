//! Elementwise passes: `wsum = w + g` and `d = σ(z)`.

use core::arch::wasm32::*;

use super::{load, math, store};

/// `out = a + c`, as `forward::scalar::sum_weights`.
pub fn add(a: &[f32], c: &[f32], out: &mut [f32]) {
    let n = out.len();
    assert!(a.len() == n && c.len() == n);
    let n4 = n & !3;
    let (pa, pc, po) = (a.as_ptr(), c.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i < n4 {
        // SAFETY: i + 4 ≤ n4 ≤ n, the length of all three slices; `out` is borrowed mutably.
        unsafe { store(po.add(i), f32x4_add(load(pa.add(i)), load(pc.add(i)))) };
        i += 4;
    }
    for i in n4..n {
        out[i] = a[i] + c[i];
    }
}

/// `d = σ(z)`, as `forward::scalar::sigmoid`.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    let n = z.len();
    assert!(d.len() == n);
    let n4 = n & !3;
    let (pz, pd) = (z.as_ptr(), d.as_mut_ptr());
    let mut i = 0;
    while i < n4 {
        // SAFETY: i + 4 ≤ n4 ≤ n = z.len() = d.len(); `d` is borrowed mutably.
        unsafe { store(pd.add(i), math::sigmoid(load(pz.add(i)))) };
        i += 4;
    }
    for i in n4..n {
        d[i] = crate::math::sigmoid(z[i]);
    }
}
