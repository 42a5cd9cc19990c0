//! Parameter gradients from `δ`: `dw = δᵀ·x` (which is also `dg`, since `z` depends on
//! `w + g`) and `db = Σ_batch δ`.
//!
//! `dw` reads `x` from the strips of [`crate::pack`]. Every element sums over the batch in
//! order, starting from 0: `dw[o][i] = (…((0 + δ[0][o]·x[0][i]) + δ[1][o]·x[1][i]) + …)`. The
//! SIMD128 flavour (one lane per `(o, i)`, a register tile of outputs × 8 inputs) adds in the
//! same order, so scalar and SIMD agree bit for bit.
//!
//! Flavours: `scalar.rs` (portable), `simd128.rs`; `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::pack::strips_len;
use crate::shape::Shape;

/// The weight gradient's contract: `delta` is `batch × outputs`, `dw` is `outputs × inputs`,
/// `strips` holds at least `pack::strips_len(shape)` floats packed by `pack_inputs`.
pub fn check_weight(delta: &[f32], strips: &[f32], dw: &[f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && dw.len() == shape.w_len());
    assert!(strips_len(shape).is_some_and(|n| strips.len() >= n));
}

/// The bias gradient's contract: `delta` is `batch × outputs`, `db` is `outputs`.
pub fn check_bias(delta: &[f32], db: &[f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && db.len() == shape.outputs);
}
