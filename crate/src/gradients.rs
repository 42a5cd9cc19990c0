//! Parameter gradients from `δ`: `dw = δᵀ·x` (which is also `dg`, since `z` depends on
//! `w + g`) and `db = Σ_batch δ`.
//!
//! `dw` reads `x` from the strips of [`crate::pack`]. Every element sums over the batch in
//! order, starting from 0: `dw[o][i] = (…((0 + δ[0][o]·x[0][i]) + δ[1][o]·x[1][i]) + …)`. The
//! SIMD128 kernel (one lane per `(o, i)`, a register tile of outputs × 8 inputs) adds in the
//! same order, so scalar and SIMD agree bit for bit.

use crate::pack::{strips_len, width};
use crate::shape::Shape;

/// `dw[o][i] = Σₙ δ[n][o]·x[n][i]`. Reads `delta` (`batch × outputs`) and `strips` (`x` packed
/// by `pack::pack_inputs` for the same shape); overwrites all of `dw` (`outputs × inputs`).
/// Returns `true` when every value written is finite.
pub fn weight_gradient(delta: &[f32], strips: &[f32], dw: &mut [f32], shape: Shape) -> bool {
    check(delta, strips, dw, shape);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return crate::simd::gradients::weight_gradient(delta, strips, dw, shape);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::weight_gradient(delta, strips, dw, shape)
}

/// `db[o] = Σₙ δ[n][o]`. Overwrites all of `db` (`outputs`).
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && db.len() == shape.outputs);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd::gradients::bias_gradient(delta, db, shape);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::bias_gradient(delta, db, shape);
}

pub(crate) fn check(delta: &[f32], strips: &[f32], dw: &[f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && dw.len() == shape.w_len());
    assert!(strips_len(shape).is_some_and(|n| strips.len() >= n));
}

pub mod scalar {
    use super::*;

    pub fn weight_gradient(delta: &[f32], strips: &[f32], dw: &mut [f32], shape: Shape) -> bool {
        let Shape { batch, inputs, outputs } = shape;
        // `x * 0` is 0 for finite x and NaN otherwise.
        let mut check = 0.0f32;
        let mut at = 0;
        let mut i0 = 0;
        while i0 < inputs {
            let wd = width(inputs, i0);
            let strip = &strips[at..at + wd * batch];
            let valid = wd.min(inputs - i0);
            for o in 0..outputs {
                let out = &mut dw[o * inputs + i0..][..valid];
                check += if wd == 8 {
                    column::<8>(delta, strip, o, outputs, out)
                } else {
                    column::<4>(delta, strip, o, outputs, out)
                };
            }
            at += wd * batch;
            i0 += wd;
        }
        check == 0.0
    }

    /// `dw[o][i0..i0+W]` from one strip: `W` accumulators over the batch. Returns the sum of
    /// `v·0` over the values written.
    #[inline(always)]
    fn column<const W: usize>(delta: &[f32], strip: &[f32], o: usize, outputs: usize, out: &mut [f32]) -> f32 {
        let mut acc = [0.0f32; W];
        for (n, xs) in strip.chunks_exact(W).enumerate() {
            let dl = delta[n * outputs + o];
            for j in 0..W {
                acc[j] += dl * xs[j];
            }
        }
        let mut check = 0.0;
        for (j, v) in out.iter_mut().enumerate() {
            *v = acc[j];
            check += acc[j] * 0.0;
        }
        check
    }

    pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) {
        db.fill(0.0);
        if shape.outputs == 0 {
            return;
        }
        for row in delta.chunks_exact(shape.outputs) {
            for (a, &dl) in db.iter_mut().zip(row) {
                *a += dl;
            }
        }
    }
}
