//! The forward pass: `z = x·(W+G)ᵀ + b` and `d = σ(z)`.
//!
//! The GEMM reads `W + G` from the packed rows of [`crate::pack`] (formed once per call, zero
//! padded to a multiple of 4 inputs). Every element is a dot product in four interleaved partial
//! sums, lane `l` adding the inputs `i ≡ l (mod 4)` in order from 0, combined as
//!
//! ```text
//! pₗ = (…((0 + x[n][l]·s[o][l]) + x[n][l+4]·s[o][l+4]) + …)     (x and s read as 0 past inputs)
//! z[n][o] = ((p₀ + p₂) + (p₁ + p₃)) + b[o]
//! ```
//!
//! with `s = fl(w + g)`: the SIMD128 flavour's `f32x4` accumulator of one `(n, o)` and its
//! horizontal sum, which the scalar flavour (`dot`) repeats operation for operation, so the two
//! give the same bits. Four partial sums each over a quarter of the inputs are also a little more
//! accurate than one long sum. `d = σ(z)` is elementwise; the drivers run it (or the objective,
//! which writes `d` too) on each block of rows right after the GEMM, while the block's `z` is
//! still in cache.
//!
//! Flavours: `scalar.rs` (portable), `simd128.rs`; `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::math::sigmoid as sigmoid1;
use crate::pack::{weights_len, weights_stride};
use crate::shape::Shape;

/// The GEMM's contract: `x` is `batch × inputs`, `b` is `outputs`, `z` is `batch × outputs`,
/// `weights` holds at least `pack::weights_len(shape)` floats packed by `pack_weights`.
pub fn check_gemm(x: &[f32], weights: &[f32], b: &[f32], z: &[f32], shape: Shape) {
    assert!(x.len() == shape.x_len() && b.len() == shape.outputs && z.len() == shape.z_len());
    assert!(weights_len(shape).is_some_and(|n| weights.len() >= n));
}

/// One element of `z` without `+ b`: `x` one row (`inputs` floats), `s` one packed row of
/// `W + G` (`weights_stride(inputs)` floats, zeros past `inputs`), in the order of the module
/// documentation. The scalar flavour, and the reference the SIMD flavour matches.
#[inline(always)]
pub fn dot(x: &[f32], s: &[f32]) -> f32 {
    let mut p = [0.0f32; 4];
    for (q, sq) in s.chunks_exact(4).enumerate() {
        for l in 0..4 {
            // Past `inputs` the SIMD flavour loads zeros: 0·0 is added there too.
            let xv = x.get(4 * q + l).copied().unwrap_or(0.0);
            p[l] += xv * sq[l];
        }
    }
    (p[0] + p[2]) + (p[1] + p[3])
}

/// Floats per packed row for this shape (the contract guarantees it exists).
#[inline(always)]
pub fn stride(shape: Shape) -> usize {
    weights_stride(shape.inputs).unwrap_or(0)
}

/// `d = σ(z)` one element at a time: the scalar flavour, and the SIMD flavour's tail.
#[inline(always)]
pub fn sigmoid_elements(z: &[f32], d: &mut [f32]) {
    for (dv, &zv) in d.iter_mut().zip(z) {
        *dv = sigmoid1(zv);
    }
}
