//! The portable flavour of the parameter gradients; always compiled, so tests run it on every
//! target.

use super::Source;
use crate::pack::{abs_bits, pair_at};
use crate::shape::Shape;

/// `dw = δᵀ·x` from `δ` in pairs (contract: `super::check_weight`); returns the largest `|dw|`
/// (not finite when a value is not). Eight columns at a time, each summed over the batch in order.
pub fn weight_gradient(pairs: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) -> f32 {
    let Shape { inputs, outputs, .. } = shape;
    let src = Source::of(shape);
    let mut max = 0;
    let mut i0 = 0;
    while i0 < inputs {
        let width = (inputs - i0).min(8);
        for o in 0..outputs {
            let acc = if width == 8 {
                columns::<8>(pairs, x, shape, src, o, i0)
            } else {
                let mut acc = [0.0f32; 8];
                for (j, a) in acc[..width].iter_mut().enumerate() {
                    *a = columns::<1>(pairs, x, shape, src, o, i0 + j)[0];
                }
                acc
            };
            for (j, &a) in acc[..width].iter().enumerate() {
                dw[o * inputs + i0 + j] = a;
                max = max.max(abs_bits(a));
            }
        }
        i0 += width;
    }
    f32::from_bits(max)
}

/// `dw[o][i0..i0+W]` (inside one strip when `x` is packed), each summed over the batch in order;
/// the result in the first `W` of eight.
#[inline(always)]
fn columns<const W: usize>(pairs: &[f32], x: &[f32], shape: Shape, src: Source, o: usize, i0: usize) -> [f32; 8] {
    // The block never crosses a strip (strips are 16 wide, blocks start at multiples of 8):
    // x[n][i0 + j] is at base + n·row + j; δ[n][o] is at first + n·w (w: its pair's width).
    let base = src.at(0, i0);
    let first = pair_at(shape, 0, o);
    let w = pair_at(shape, 1, o).wrapping_sub(first);
    let mut acc = [0.0f32; 8];
    for n in 0..shape.batch {
        let dl = pairs[first + n * w];
        let xr: &[f32; W] = x[base + n * src.row..][..W].try_into().expect("W floats");
        for j in 0..W {
            acc[j] += dl * xr[j];
        }
    }
    acc
}

/// `db = Σₙ δ` (contract: `super::check_bias`); returns the largest `|db|`.
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) -> f32 {
    db.fill(0.0);
    if shape.outputs == 0 {
        return 0.0;
    }
    for row in delta.chunks_exact(shape.outputs) {
        for (a, &dl) in db.iter_mut().zip(row) {
            *a += dl;
        }
    }
    f32::from_bits(db.iter().fold(0, |m, &v| m.max(abs_bits(v))))
}
