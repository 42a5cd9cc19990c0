//! The SIMD128 flavour of the packings: the same layouts with `f32x4`, so the same floats.

use core::arch::wasm32::*;

use super::{check_inputs, check_weights, weights_stride, write_row, STRIP};
use crate::shape::Shape;
use crate::simd::{load, max_bits, store};

/// As the scalar flavour: each row four columns at a time (`w` and `g` loaded, added, stored,
/// their `|·|` bits folded into running maxima), the last `inputs % 4` columns and the padding
/// element by element.
pub fn pack_weights(w: &[f32], g: &[f32], weights: &mut [f32], shape: Shape) -> [f32; 2] {
    check_weights(w, g, weights, shape);
    let Shape { inputs, outputs, .. } = shape;
    let stride = weights_stride(inputs).unwrap_or(0);
    let i4 = inputs & !3;
    let sign = u32x4_splat(0x7fff_ffff);
    let (mut mw, mut mg) = (u32x4_splat(0), u32x4_splat(0));
    let mut max = [0; 2];
    for o in 0..outputs {
        let (pw, pg) = (w[o * inputs..][..inputs].as_ptr(), g[o * inputs..][..inputs].as_ptr());
        let row = &mut weights[o * stride..][..stride];
        let pr = row.as_mut_ptr();
        let mut i = 0;
        while i < i4 {
            // SAFETY: i + 4 ≤ inputs: inside the rows of w and g and of `row` (stride ≥ inputs),
            // which is borrowed mutably.
            unsafe {
                let (a, b) = (load(pw.add(i)), load(pg.add(i)));
                mw = u32x4_max(mw, v128_and(a, sign));
                mg = u32x4_max(mg, v128_and(b, sign));
                store(pr.add(i), f32x4_add(a, b));
            }
            i += 4;
        }
        max =
            write_row(&w[o * inputs + i4..][..inputs - i4], &g[o * inputs + i4..][..inputs - i4], &mut row[i4..], max);
    }
    [max[0].max(max_bits(mw)), max[1].max(max_bits(mg))].map(f32::from_bits)
}

/// As the scalar flavour: each row of a strip is four vectors.
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    check_inputs(x, strips, shape);
    let Shape { batch, inputs, .. } = shape;
    let (px, ps) = (x.as_ptr(), strips.as_mut_ptr());
    for s in 0..inputs / STRIP {
        for n in 0..batch {
            // SAFETY: n < batch and 16s + 16 ≤ inputs: inside x; (s·batch + n + 1)·16 ≤
            // batch·inputs = strips_len ≤ strips.len(), which is borrowed mutably.
            unsafe {
                let from = px.add(n * inputs + s * STRIP);
                let to = ps.add((s * batch + n) * STRIP);
                for c in 0..4 {
                    store(to.add(4 * c), load(from.add(4 * c)));
                }
            }
        }
    }
}
