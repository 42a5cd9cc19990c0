//! The forward pass: `wsum = w + g`, then `z = x·wsumᵀ + b` and `d = σ(z)`.
//!
//! The GEMM is a dot product over the contiguous `inputs` dimension. Every dot product
//! accumulates in four lanes (lane k takes the inputs `i ≡ k mod 4` of the first
//! `inputs - inputs % 4`), reduces them as `(l0 + l1) + (l2 + l3)`, then adds the remaining
//! inputs in order and finally `b`: the SIMD128 kernel keeps one `f32x4` per dot product and
//! does exactly that, so the scalar and SIMD `z` agree bit for bit.

use crate::math::sigmoid;
use crate::shape::Shape;

/// `wsum = w + g`, elementwise. All three have the same length.
pub fn sum_weights(w: &[f32], g: &[f32], wsum: &mut [f32]) {
    assert!(w.len() == wsum.len() && g.len() == wsum.len());
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    crate::simd::elementwise::add(w, g, wsum);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::sum_weights(w, g, wsum);
}

/// `z = x·wsumᵀ + b` and `d = σ(z)`. Reads `x` (`batch × inputs`), `wsum` (`outputs ×
/// inputs`), `b` (`outputs`); writes every element of `z` and `d` (`batch × outputs`).
pub fn forward(x: &[f32], wsum: &[f32], b: &[f32], z: &mut [f32], d: &mut [f32], shape: Shape) {
    check(x, wsum, b, z, d, shape);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        crate::simd::forward::gemm(x, wsum, b, z, shape);
        crate::simd::elementwise::sigmoid(z, d);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    {
        scalar::gemm(x, wsum, b, z, shape);
        scalar::sigmoid(z, d);
    }
}

pub(crate) fn check(x: &[f32], wsum: &[f32], b: &[f32], z: &[f32], d: &[f32], shape: Shape) {
    assert!(x.len() == shape.x_len() && wsum.len() == shape.w_len() && b.len() == shape.outputs);
    assert!(z.len() == shape.z_len() && d.len() == shape.z_len());
}

/// The portable bodies; always compiled, so tests can run them on every target.
pub mod scalar {
    use super::*;

    pub fn sum_weights(w: &[f32], g: &[f32], wsum: &mut [f32]) {
        for ((s, &a), &c) in wsum.iter_mut().zip(w).zip(g) {
            *s = a + c;
        }
    }

    /// `z = x·wsumᵀ + b`.
    pub fn gemm(x: &[f32], wsum: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
        let Shape { batch, inputs, outputs } = shape;
        if outputs == 0 {
            return;
        }
        for n in 0..batch {
            let xr = &x[n * inputs..(n + 1) * inputs];
            let zr = &mut z[n * outputs..(n + 1) * outputs];
            for (o, zo) in zr.iter_mut().enumerate() {
                let wr = &wsum[o * inputs..(o + 1) * inputs];
                *zo = dot(xr, wr) + b[o];
            }
        }
    }

    /// Four-lane dot product in the order the SIMD kernel uses.
    #[inline(always)]
    pub fn dot(x: &[f32], w: &[f32]) -> f32 {
        let mut l = [0.0f32; 4];
        let xc = x.chunks_exact(4);
        let wc = w.chunks_exact(4);
        let (xt, wt) = (xc.remainder(), wc.remainder());
        for (xv, wv) in xc.zip(wc) {
            l[0] += xv[0] * wv[0];
            l[1] += xv[1] * wv[1];
            l[2] += xv[2] * wv[2];
            l[3] += xv[3] * wv[3];
        }
        let mut s = (l[0] + l[1]) + (l[2] + l[3]);
        for (&a, &c) in xt.iter().zip(wt) {
            s += a * c;
        }
        s
    }

    /// `d = σ(z)`, elementwise.
    pub fn sigmoid(z: &[f32], d: &mut [f32]) {
        for (dv, &zv) in d.iter_mut().zip(z) {
            *dv = super::sigmoid(zv);
        }
    }
}
