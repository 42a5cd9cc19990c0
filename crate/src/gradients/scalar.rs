//! The portable flavour of the parameter gradients; always compiled, so tests run it on every
//! target.

use crate::pack::blocks;
use crate::shape::Shape;

/// `dw = δᵀ·x` (contract: `super::check_weight`); `true` when every value written is finite.
pub fn weight_gradient(delta: &[f32], strips: &[f32], dw: &mut [f32], shape: Shape) -> bool {
    let Shape { batch, inputs, outputs } = shape;
    // `x * 0` is 0 for finite x and NaN otherwise.
    let mut check = 0.0f32;
    for (i0, wd) in blocks(inputs) {
        let strip = &strips[i0 * batch..][..wd * batch];
        let valid = wd.min(inputs - i0);
        for o in 0..outputs {
            let out = &mut dw[o * inputs + i0..][..valid];
            check += if wd == 8 {
                column::<8>(delta, strip, o, outputs, out)
            } else {
                column::<4>(delta, strip, o, outputs, out)
            };
        }
    }
    check == 0.0
}

/// `dw[o][i0..i0+W]` from one strip: `W` accumulators over the batch. Returns the sum of
/// `v·0` over the values written.
#[inline(always)]
fn column<const W: usize>(delta: &[f32], strip: &[f32], o: usize, outputs: usize, out: &mut [f32]) -> f32 {
    let mut acc = [0.0f32; W];
    for (n, xs) in strip.chunks_exact(W).enumerate() {
        let dl = delta[n * outputs + o];
        for j in 0..W {
            acc[j] += dl * xs[j];
        }
    }
    let mut check = 0.0;
    for (j, v) in out.iter_mut().enumerate() {
        *v = acc[j];
        check += acc[j] * 0.0;
    }
    check
}

/// `db = Σₙ δ` (contract: `super::check_bias`).
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) {
    db.fill(0.0);
    if shape.outputs == 0 {
        return;
    }
    for row in delta.chunks_exact(shape.outputs) {
        for (a, &dl) in db.iter_mut().zip(row) {
            *a += dl;
        }
    }
}
