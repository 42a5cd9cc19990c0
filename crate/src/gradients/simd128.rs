//! The SIMD128 flavour of the parameter gradients: `dw = δᵀ·x` as a register-blocked GEMM over
//! the strips of `crate::pack`, and `db = Σₙ δ` four outputs at a time.
//!
//! A tile is `R` outputs × one strip (`4C` inputs): `R·C` accumulators, one lane per
//! `(o, i)`, summed over the whole batch in order from 0, as the scalar body does element by
//! element, so `dw` matches it bit for bit. Per row of the batch it loads the strip's `C`
//! vectors (contiguous: the strip is packed) and splats `δ[n][o]` for each output. 4×2 keeps
//! 8 accumulators in registers (measured: 4×8 beat 6×8 and unrolled forms under V8).

use core::arch::wasm32::*;

use super::{check_bias, check_weight};
use crate::pack::blocks;
use crate::shape::Shape;
use crate::simd::{load, store};

/// Outputs per tile.
const R: usize = 4;

/// `dw = δᵀ·x` (contract: `super::check_weight`, asserted: the tiles index unchecked); `true`
/// when every value written is finite.
pub fn weight_gradient(delta: &[f32], strips: &[f32], dw: &mut [f32], shape: Shape) -> bool {
    check_weight(delta, strips, dw, shape);
    let mut check = f32x4_splat(0.0);
    let mut o = 0;
    while o < shape.outputs {
        for (i0, wd) in blocks(shape.inputs) {
            let strip = &strips[i0 * shape.batch..][..wd * shape.batch];
            let c = if wd == 8 {
                tile::<2>(delta, strip, dw, shape, o, i0)
            } else {
                tile::<1>(delta, strip, dw, shape, o, i0)
            };
            check = f32x4_add(check, c);
        }
        o += R;
    }
    i32x4_all_true(f32x4_eq(check, f32x4_splat(0.0)))
}

/// `dw[o0..o0+R][i0..i0+4C]`, the part of it inside `dw`; returns the sum of `v·0` over the
/// values written. Requires `o0 < outputs`, a strip of `4C × batch` floats for inputs `i0..`
/// and the lengths checked in `weight_gradient`. A last tile of fewer than `R` outputs repeats
/// its last output in the missing ones and stores only its own (one tile shape for every
/// size: module size).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // r, c index the register tile and the offsets it is stored to together
fn tile<const C: usize>(delta: &[f32], strip: &[f32], dw: &mut [f32], shape: Shape, o0: usize, i0: usize) -> v128 {
    let Shape { batch, inputs, outputs } = shape;
    assert!(o0 < outputs && strip.len() == 4 * C * batch && i0 < inputs);
    let rows = (outputs - o0).min(R);
    let col: [usize; R] = core::array::from_fn(|r| o0 + r.min(rows - 1));
    let (ps, pd) = (strip.as_ptr(), delta.as_ptr());
    let mut acc = [[f32x4_splat(0.0); C]; R];
    for n in 0..batch {
        // SAFETY: n < batch: the strip holds 4C floats per row; δ row n has `outputs` floats
        // and every col[r] < outputs.
        let xv: [v128; C] = core::array::from_fn(|c| unsafe { load(ps.add(n * 4 * C + 4 * c)) });
        for r in 0..R {
            // SAFETY: as above.
            let ds = unsafe { v128_load32_splat(pd.add(n * outputs + col[r]) as *const u32) };
            for c in 0..C {
                acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(ds, xv[c]));
            }
        }
    }
    let zero = f32x4_splat(0.0);
    let mut check = zero;
    let valid = (4 * C).min(inputs - i0);
    if valid == 4 * C {
        let pw = dw.as_mut_ptr();
        for r in 0..rows {
            for c in 0..C {
                // SAFETY: o0 + r < outputs and i0 + 4c + 4 ≤ i0 + valid ≤ inputs: inside dw
                // (`outputs × inputs`), which is borrowed mutably.
                unsafe { store(pw.add((o0 + r) * inputs + i0 + 4 * c), acc[r][c]) };
                check = f32x4_add(check, f32x4_mul(acc[r][c], zero));
            }
        }
    } else {
        let mut s = 0.0f32;
        for r in 0..rows {
            let mut lanes = [0.0f32; 8];
            for c in 0..C {
                // SAFETY: 4c + 4 ≤ 4C ≤ 8 = lanes.len().
                unsafe { store(lanes.as_mut_ptr().add(4 * c), acc[r][c]) };
            }
            let row = &mut dw[(o0 + r) * inputs + i0..][..valid];
            for (k, v) in row.iter_mut().enumerate() {
                *v = lanes[k];
                s += lanes[k] * 0.0;
            }
        }
        check = f32x4_replace_lane::<0>(check, s);
    }
    check
}

/// `db = Σₙ δ` (contract: `super::check_bias`, asserted).
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) {
    check_bias(delta, db, shape);
    let Shape { batch, outputs, .. } = shape;
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
