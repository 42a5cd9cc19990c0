//! The portable flavour of the forward pass; always compiled, so tests run it on every target.

use super::sigmoid_elements;
use crate::pack::blocks;
use crate::shape::Shape;

/// `z = x·(W+G)ᵀ + b` (contract: `super::check_gemm`).
pub fn gemm(x: &[f32], panels: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    let Shape { batch, inputs, outputs } = shape;
    for (o0, wd) in blocks(outputs) {
        let panel = &panels[o0 * inputs..][..wd * inputs];
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

/// `d = σ(z)`, elementwise; `z` and `d` have the same length.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    sigmoid_elements(z, d);
}
