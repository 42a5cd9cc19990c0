//! Parameter gradients from `δ`: `dw = δᵀ·x` (which is also `dg`, since `z` depends on
//! `w + g`) and `db = Σ_batch δ`.
//!
//! `dw` reads `δ` from its pairs (`pack::pack_delta`) and `x` in place, or from the strips of
//! [`crate::pack`] where `pack::packs_inputs` says the rows' stride would thrash the cache. Every element sums over the batch in order,
//! starting from 0: `dw[o][i] = (…((0 + δ[n₀][o]·x[n₀][i]) + δ[n₁][o]·x[n₁][i]) + …)`. The
//! SIMD128 flavour (one lane per `(o, i)`, a register tile of outputs × 16 inputs) adds in the
//! same order, so scalar and SIMD agree bit for bit. Both kernels return the largest `|·|` they
//! wrote (NaN or ∞ when a value is not finite): `step` bounds the update with it.
//!
//! Flavours: `scalar.rs` (portable), `simd128.rs`; `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::pack::{packs_inputs, strips_len, STRIP};
use crate::shape::Shape;

/// The weight gradient's contract: `pairs` is `δ` in pairs (`pack::pack_delta`, `batch ×
/// outputs` floats), `dw` is `outputs × inputs`,
/// and `x` is the batch itself (`batch × inputs`) or, where `pack::packs_inputs(shape)`, its
/// strips (at least `pack::strips_len(shape)` floats, packed by `pack_inputs`).
pub fn check_weight(pairs: &[f32], x: &[f32], dw: &[f32], shape: Shape) {
    assert!(pairs.len() >= shape.z_len() && dw.len() == shape.w_len());
    if packs_inputs(shape) {
        assert!(strips_len(shape).is_some_and(|n| x.len() >= n));
    } else {
        assert!(x.len() == shape.x_len());
    }
}

/// The bias gradient's contract: `delta` is `batch × outputs`, `db` is `outputs`.
pub fn check_bias(delta: &[f32], db: &[f32], shape: Shape) {
    assert!(delta.len() == shape.z_len() && db.len() == shape.outputs);
}

/// Where the weight gradient finds `x[n][i]` in what it reads: `x` itself, or its strips.
#[derive(Clone, Copy)]
pub struct Source {
    /// Floats from one row to the next within a block of 16 columns.
    pub row: usize,
    /// Floats from one block of 16 columns to the next.
    pub block: usize,
}

impl Source {
    pub fn of(shape: Shape) -> Source {
        if packs_inputs(shape) {
            Source { row: STRIP, block: STRIP * shape.batch }
        } else {
            Source { row: shape.inputs, block: STRIP }
        }
    }
    /// The index of `x[n][i]`.
    #[inline(always)]
    pub fn at(self, n: usize, i: usize) -> usize {
        (i / STRIP) * self.block + n * self.row + i % STRIP
    }
}
