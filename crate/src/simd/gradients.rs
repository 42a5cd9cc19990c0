//! `dw = δᵀ·x` as a register-blocked axpy over the contiguous `inputs`, and `db = Σₙ δ`.
//!
//! A tile is `R` outputs × `C` vectors of 4 inputs (4×8: 8 accumulators, 2 `x` vectors and a
//! splat of δ per output), summed over the whole batch in order from 0, as the scalar body
//! does element by element, so `dw` matches it bit for bit. Leftover inputs (< 4) are summed
//! the scalar way.

use core::arch::wasm32::*;

use super::{load, store};
use crate::shape::Shape;

pub fn weight_gradient(delta: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) {
    let Shape { batch, inputs, outputs } = shape;
    assert!(delta.len() == shape.z_len() && x.len() == shape.x_len() && dw.len() == shape.w_len());
    // Four tile shapes: 4×8, 4×4 and, for the last outputs % 4 rows, 1×8, 1×4.
    let mut o = 0;
    while o + 4 <= outputs {
        outputs_from::<4>(delta, x, dw, shape, o);
        o += 4;
    }
    while o < outputs {
        outputs_from::<1>(delta, x, dw, shape, o);
        o += 1;
    }
    // The last inputs % 4 columns, summed the scalar way.
    for o in 0..outputs {
        for i in inputs & !3..inputs {
            let mut s = 0.0f32;
            for n in 0..batch {
                s += delta[n * outputs + o] * x[n * inputs + i];
            }
            dw[o * inputs + i] = s;
        }
    }
}

#[inline(always)]
fn outputs_from<const R: usize>(delta: &[f32], x: &[f32], dw: &mut [f32], shape: Shape, o0: usize) {
    let mut i = 0;
    while i + 8 <= shape.inputs {
        tile::<R, 2>(delta, x, dw, shape, o0, i);
        i += 8;
    }
    if i + 4 <= shape.inputs {
        tile::<R, 1>(delta, x, dw, shape, o0, i);
    }
}

/// `dw[o0..o0+R][i0..i0+4C]`. Requires `o0 + R ≤ outputs`, `i0 + 4C ≤ inputs` and the lengths
/// checked in `weight_gradient`.
#[inline(always)]
fn tile<const R: usize, const C: usize>(delta: &[f32], x: &[f32], dw: &mut [f32], shape: Shape, o0: usize, i0: usize) {
    let Shape { batch, inputs, outputs } = shape;
    assert!(o0 + R <= outputs && i0 + 4 * C <= inputs);
    let (px, pd) = (x.as_ptr(), delta.as_ptr());
    let mut acc = [[f32x4_splat(0.0); C]; R];
    for n in 0..batch {
        // SAFETY: n < batch, so row n of x (`inputs` floats) and of delta (`outputs` floats)
        // lie inside their slices, and i0 + 4C ≤ inputs, o0 + R ≤ outputs.
        let xv: [v128; C] = core::array::from_fn(|c| unsafe { load(px.add(n * inputs + i0 + 4 * c)) });
        for r in 0..R {
            // SAFETY: as above.
            let dv = f32x4_splat(unsafe { *pd.add(n * outputs + o0 + r) });
            for c in 0..C {
                acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(dv, xv[c]));
            }
        }
    }
    let pw = dw.as_mut_ptr();
    for r in 0..R {
        for c in 0..C {
            // SAFETY: (o0 + r) < outputs and i0 + 4c + 4 ≤ inputs: inside dw (`outputs × inputs`),
            // which is borrowed mutably.
            unsafe { store(pw.add((o0 + r) * inputs + i0 + 4 * c), acc[r][c]) };
        }
    }
}

pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) {
    let Shape { batch, outputs, .. } = shape;
    assert!(delta.len() == shape.z_len() && db.len() == outputs);
    let o4 = outputs & !3;
    let pd = delta.as_ptr();
    let mut o = 0;
    while o < o4 {
        let mut acc = f32x4_splat(0.0);
        for n in 0..batch {
            // SAFETY: n < batch and o + 4 ≤ outputs: inside delta (`batch × outputs`).
            acc = f32x4_add(acc, unsafe { load(pd.add(n * outputs + o)) });
        }
        // SAFETY: o + 4 ≤ outputs = db.len(); db is borrowed mutably.
        unsafe { store(db.as_mut_ptr().add(o), acc) };
        o += 4;
    }
    for o in o4..outputs {
        let mut s = 0.0f32;
        for n in 0..batch {
            s += delta[n * outputs + o];
        }
        db[o] = s;
    }
}
