//! The portable flavour of the parameter gradients; always compiled, so tests run it on every
//! target.

use super::Source;
use crate::pack::{abs_bits, pair_at};
use crate::shape::Shape;

/// `dw = δᵀ·x` from `δ` in pairs (contract: `super::check_weight`); returns the largest `|dw|`
/// (not finite when a value is not). Eight columns at a time, each summed over the batch in order.
pub fn weight_gradient(pairs: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) -> f32 {
    let Shape { batch, inputs, outputs } = shape;
    let src = Source::of(shape);
    let mut max = 0;
    let mut i0 = 0;
    while i0 < inputs {
        let width = (inputs - i0).min(8);
        // The block never crosses a strip (strips are 16 wide, blocks start at multiples of 8):
        // x[n][i0 + j] is at base + n·row + j.
        let base = src.at(0, i0);
        for o in 0..outputs {
            let mut acc = [0.0f32; 8];
            for n in 0..batch {
                let dl = pairs[pair_at(shape, n, o)];
                let xr = &x[base + n * src.row..][..width];
                for (a, &xv) in acc[..width].iter_mut().zip(xr) {
                    *a += dl * xv;
                }
            }
            for (j, &a) in acc[..width].iter().enumerate() {
                dw[o * inputs + i0 + j] = a;
                max = max.max(abs_bits(a));
            }
        }
        i0 += width;
    }
    f32::from_bits(max)
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
