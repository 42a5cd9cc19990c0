//! The portable flavour of the forward pass; always compiled, so tests run it on every target.
//!
//! Element by element it is `super::dot`: four lane sums `pₗ` (lane `l` adds the inputs
//! `i ≡ l (mod 4)` in order), joined as `(p₀ + p₂) + (p₁ + p₃)`, so it gives the SIMD flavour's
//! bits. Without vectors (the scalar WebAssembly build runs this) the lanes are computed one after
//! another, each for a tile of 8 outputs: one value of `x` then serves 8 products, with 8
//! accumulators, as the packed panels of the 0.1.0 kernel did. This build is still 0.6–0.75× as
//! fast as that kernel (bench, `--baseline`): its 8-wide panels streamed one pointer in the order
//! of one long sum, which the SIMD flavour's order does not allow; two outputs by four lanes and
//! 2 × 2 tiles measured the same or slower.

use super::{check_gemm, sigmoid_elements, stride};
use crate::shape::Shape;

/// `z = x·(W+G)ᵀ + b` (contract: `super::check_gemm`, asserted: the tiles index unchecked).
pub fn gemm(x: &[f32], weights: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    check_gemm(x, weights, b, z, shape);
    let Shape { batch, inputs, outputs } = shape;
    let rows = Rows { s: stride(shape), i4: inputs & !3, inputs };
    for n in 0..batch {
        let xr = &x[n * inputs..][..inputs];
        // The last `inputs % 4` zero padded: past `inputs` the packed rows hold zeros too, and
        // the SIMD flavour adds those 0·0.
        let mut tail = [0.0f32; 4];
        tail[..inputs - rows.i4].copy_from_slice(&xr[rows.i4..]);
        let zr = &mut z[n * outputs..][..outputs];
        let mut o = 0;
        while o + 8 <= outputs {
            rows.tile::<8>(xr, &tail, weights, b, zr, o);
            o += 8;
        }
        while o + 4 <= outputs {
            rows.tile::<4>(xr, &tail, weights, b, zr, o);
            o += 4;
        }
        while o < outputs {
            rows.tile::<1>(xr, &tail, weights, b, zr, o);
            o += 1;
        }
    }
}

/// The packed rows' geometry: stride `s`, whole quads up to `i4`.
#[derive(Clone, Copy)]
struct Rows {
    s: usize,
    i4: usize,
    inputs: usize,
}

impl Rows {
    /// `z[n][o0..o0+W]` for one row `xr` of `x`, lane after lane.
    #[inline(always)]
    fn tile<const W: usize>(self, xr: &[f32], tail: &[f32; 4], w: &[f32], b: &[f32], zr: &mut [f32], o0: usize) {
        let Rows { s, i4, inputs } = self;
        let mut p = [[0.0f32; W]; 4];
        for (l, pl) in p.iter_mut().enumerate() {
            let mut acc = [0.0f32; W];
            let mut i = l;
            while i < i4 {
                let xv = xr[i];
                for (c, a) in acc.iter_mut().enumerate() {
                    // SAFETY: `check_gemm` asserted `weights_len(shape)` floats: `outputs` rows of
                    // `s ≥ 4·⌈inputs/4⌉` each, and `o0 + c < outputs`, `i < i4 ≤ inputs`.
                    *a += xv * unsafe { *w.get_unchecked((o0 + c) * s + i) };
                }
                i += 4;
            }
            if i4 < inputs {
                let xv = tail[l];
                for (c, a) in acc.iter_mut().enumerate() {
                    // SAFETY: as above, with `i4 + l < 4·⌈inputs/4⌉ ≤ s`.
                    *a += xv * unsafe { *w.get_unchecked((o0 + c) * s + i4 + l) };
                }
            }
            *pl = acc;
        }
        for c in 0..W {
            zr[o0 + c] = ((p[0][c] + p[2][c]) + (p[1][c] + p[3][c])) + b[o0 + c];
        }
    }
}

/// `d = σ(z)`, elementwise; `z` and `d` have the same length.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    sigmoid_elements(z, d);
}
