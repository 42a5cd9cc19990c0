//! The forward pass: `z = x·(W+G)ᵀ + b` and `d = σ(z)`.
//!
//! The GEMM reads `W + G` from the panels of [`crate::pack`] (formed once per call). Every
//! element is a plain dot product summed in order of the inputs from 0, then `+ b[o]`:
//!
//! ```text
//! z[n][o] = ((…((0 + x[n][0]·s[o][0]) + x[n][1]·s[o][1]) + …) + x[n][I-1]·s[o][I-1]) + b[o]
//! ```
//!
//! with `s = fl(w + g)`. The SIMD128 flavour keeps one lane per `(n, o)` and adds in that same
//! order, so the two flavours give the same bits. `d = σ(z)` is elementwise; the drivers run it
//! (or the objective, which writes `d` too) on each block of rows right after the GEMM, while
//! the block's `z` is still in cache.
//!
//! Flavours: `scalar.rs` (portable), `simd128.rs`; `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::math::sigmoid as sigmoid1;
use crate::pack::panels_len;
use crate::shape::Shape;

/// The GEMM's contract: `x` is `batch × inputs`, `b` is `outputs`, `z` is `batch × outputs`,
/// `panels` holds at least `pack::panels_len(shape)` floats packed by `pack_weights`.
pub fn check_gemm(x: &[f32], panels: &[f32], b: &[f32], z: &[f32], shape: Shape) {
    assert!(x.len() == shape.x_len() && b.len() == shape.outputs && z.len() == shape.z_len());
    assert!(panels_len(shape).is_some_and(|n| panels.len() >= n));
}

/// `d = σ(z)` one element at a time: the scalar flavour, and the SIMD flavour's tail.
#[inline(always)]
pub fn sigmoid_elements(z: &[f32], d: &mut [f32]) {
    for (dv, &zv) in d.iter_mut().zip(z) {
        *dv = sigmoid1(zv);
    }
}
