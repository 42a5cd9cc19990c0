//! The elementwise forward pass `d = σ(z)` (the objective, which also writes `d`, is in
//! `objective.rs`).

use super::{load, math, store};

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
