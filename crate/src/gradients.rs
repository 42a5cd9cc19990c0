//! Parameter gradients from `δ`: `dw = δᵀ·x` (which is also `dg`, since `z` depends on
//! `w + g`) and `db = Σ_batch δ`.
//!
//! Every element sums over the batch in order, starting from 0: the SIMD128 kernel (an axpy
//! over `inputs` with a register tile of outputs × inputs) does the same, so scalar and SIMD
//! agree bit for bit.

use crate::shape::Shape;

/// `dw[o][i] = Σₙ δ[n][o]·x[n][i]`. Reads `delta` (`batch × outputs`) and `x` (`batch ×
/// inputs`); overwrites all of `dw` (`outputs × inputs`).
pub fn weight_gradient(delta: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && x.len() == shape.x_len() && dw.len() == shape.w_len());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd::gradients::weight_gradient(delta, x, dw, shape);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::weight_gradient(delta, x, dw, shape);
}

/// `db[o] = Σₙ δ[n][o]`. Overwrites all of `db` (`outputs`).
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && db.len() == shape.outputs);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd::gradients::bias_gradient(delta, db, shape);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::bias_gradient(delta, db, shape);
}

pub mod scalar {
    use super::*;

    pub fn weight_gradient(delta: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) {
        let Shape { batch, inputs, outputs } = shape;
        if inputs == 0 {
            return;
        }
        for (o, dwr) in dw.chunks_exact_mut(inputs).enumerate() {
            dwr.fill(0.0);
            for n in 0..batch {
                let dl = delta[n * outputs + o];
                let xr = &x[n * inputs..(n + 1) * inputs];
                for (a, &xv) in dwr.iter_mut().zip(xr) {
                    *a += dl * xv;
                }
            }
        }
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
