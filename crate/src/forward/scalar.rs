//! The portable flavour of the forward pass; always compiled, so tests run it on every target.

use super::{dot, sigmoid_elements, stride};
use crate::shape::Shape;

/// `z = x·(W+G)ᵀ + b` (contract: `super::check_gemm`).
pub fn gemm(x: &[f32], weights: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    let Shape { batch, inputs, outputs } = shape;
    let s = stride(shape);
    for n in 0..batch {
        let xr = &x[n * inputs..][..inputs];
        for o in 0..outputs {
            z[n * outputs + o] = dot(xr, &weights[o * s..][..s]) + b[o];
        }
    }
}

/// `d = σ(z)`, elementwise; `z` and `d` have the same length.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    sigmoid_elements(z, d);
}
