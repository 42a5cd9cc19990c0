//! The portable flavour of the packings; always compiled, so tests run it on every target.

use super::{weights_stride, write_row, STRIP};
use crate::shape::Shape;

/// `weights ← w + g` in padded rows (contract: `super::check_weights`); returns `max |w|` and
/// `max |g|` (NaN when either holds a NaN).
pub fn pack_weights(w: &[f32], g: &[f32], weights: &mut [f32], shape: Shape) -> [f32; 2] {
    let Shape { inputs, outputs, .. } = shape;
    let stride = weights_stride(inputs).unwrap_or(0);
    let mut max = [0; 2];
    for o in 0..outputs {
        let (wr, gr) = (&w[o * inputs..][..inputs], &g[o * inputs..][..inputs]);
        max = write_row(wr, gr, &mut weights[o * stride..][..stride], max);
    }
    max.map(f32::from_bits)
}

/// `strips ← x` in strips of 16 inputs (contract: `super::check_inputs`).
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    let Shape { batch, inputs, .. } = shape;
    for s in 0..inputs / STRIP {
        for n in 0..batch {
            strips[(s * batch + n) * STRIP..][..STRIP].copy_from_slice(&x[n * inputs + s * STRIP..][..STRIP]);
        }
    }
}
