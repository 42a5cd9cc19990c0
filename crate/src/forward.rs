//! The forward pass: `z = x·(W+G)ᵀ + b` and `d = σ(z)`.
//!
//! The GEMM reads `W + G` from the panels of [`crate::pack`] (formed once per call). Every
//! element is a plain dot product summed in order of the inputs from 0, then `+ b[o]`:
//!
//! ```text
//! z[n][o] = ((…((0 + x[n][0]·s[o][0]) + x[n][1]·s[o][1]) + …) + x[n][I-1]·s[o][I-1]) + b[o]
//! ```
//!
//! with `s = fl(w + g)`. The SIMD128 kernel keeps one lane per `(n, o)` and adds in that same
//! order, so the two flavours give the same bits. `d = σ(z)` is elementwise; the drivers run it
//! (or the objective, which writes `d` too) on each block of rows right after the GEMM, while
//! the block's `z` is still in cache.

use crate::math::sigmoid as sigmoid1;
use crate::pack::{panels_len, width};
use crate::shape::Shape;

/// `z = x·(W+G)ᵀ + b` for every row of `x` (`batch × inputs`), from `panels` (packed by
/// `pack::pack_weights` for the same `inputs` and `outputs`). Overwrites all of `z`.
pub fn gemm(x: &[f32], panels: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    check(x, panels, b, z, shape);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd::forward::gemm(x, panels, b, z, shape);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::gemm(x, panels, b, z, shape);
}

/// `d = σ(z)`, elementwise; `z` and `d` have the same length.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    assert!(z.len() == d.len());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd::elementwise::sigmoid(z, d);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::sigmoid(z, d);
}

pub(crate) fn check(x: &[f32], panels: &[f32], b: &[f32], z: &[f32], shape: Shape) {
    assert!(x.len() == shape.x_len() && b.len() == shape.outputs && z.len() == shape.z_len());
    assert!(panels_len(shape).is_some_and(|n| panels.len() >= n));
}

/// The portable bodies; always compiled, so tests can run them on every target.
pub mod scalar {
    use super::*;

    pub fn gemm(x: &[f32], panels: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
        let Shape { batch, inputs, outputs } = shape;
        let mut at = 0;
        let mut o0 = 0;
        while o0 < outputs {
            let wd = width(outputs, o0);
            let panel = &panels[at..at + wd * inputs];
            let valid = wd.min(outputs - o0);
            for n in 0..batch {
                let xr = &x[n * inputs..][..inputs];
                let zr = &mut z[n * outputs + o0..][..valid];
                if wd == 8 {
                    row::<8>(xr, panel, &b[o0..o0 + valid], zr);
                } else {
                    row::<4>(xr, panel, &b[o0..o0 + valid], zr);
                }
            }
            at += wd * inputs;
            o0 += wd;
        }
    }

    /// One row of `x` against one panel: `W` accumulators, one per output.
    #[inline(always)]
    fn row<const W: usize>(xr: &[f32], panel: &[f32], b: &[f32], zr: &mut [f32]) {
        let mut acc = [0.0f32; W];
        for (&xv, p) in xr.iter().zip(panel.chunks_exact(W)) {
            for c in 0..W {
                acc[c] += xv * p[c];
            }
        }
        for (c, zo) in zr.iter_mut().enumerate() {
            *zo = acc[c] + b[c];
        }
    }

    /// `d = σ(z)`, elementwise.
    pub fn sigmoid(z: &[f32], d: &mut [f32]) {
        for (dv, &zv) in d.iter_mut().zip(z) {
            *dv = sigmoid1(zv);
        }
    }
}
