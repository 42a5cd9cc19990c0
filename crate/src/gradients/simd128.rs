//! The SIMD128 flavour of the parameter gradients: `dw = δᵀ·x` as a register-tiled GEMM over
//! `x` (in place or in strips, `super::Source`), and `db = Σₙ δ`.
//!
//! A tile is `R` outputs × `4C` inputs: `R·C` accumulators, one lane per `(o, i)`, summed over
//! the whole batch in order from 0, as the scalar flavour does element by element, so `dw`
//! matches it bit for bit. Per row of the batch it loads `C` vectors of `x` and splats `δ[n][o]`
//! for each output, from `δ`'s pairs (consecutive in memory row after row). The main tile is 2 outputs × 16 inputs: 8 accumulators, and a whole 64-byte
//! line of each row of `x` per pass (4 outputs × 8 inputs read each line twice, a pass apart).
//! Blocks of 16 columns are the outer loop, so a strip stays in cache while every output passes
//! it. The last output of an odd count is a 1 × 16 tile; columns past the last multiple of 16
//! (only when `x` is read in place) go four at a time, then one at a time.

use core::arch::wasm32::*;

use super::{check_bias, check_weight, Source};
use crate::pack::{abs_bits, pair_at, STRIP};
use crate::shape::Shape;
use crate::simd::{load, max_bits, store};

/// `dw = δᵀ·x` from `δ` in pairs (contract: `super::check_weight`, asserted: the tiles index
/// unchecked); returns the largest `|dw|`.
pub fn weight_gradient(pairs: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) -> f32 {
    check_weight(pairs, x, dw, shape);
    let Shape { inputs, outputs, .. } = shape;
    let src = Source::of(shape);
    let sign = u32x4_splat(0x7fff_ffff);
    let mut max = u32x4_splat(0);
    let o2 = outputs & !1;
    let i16 = inputs - inputs % STRIP;
    let mut i0 = 0;
    while i0 < i16 {
        let mut o = 0;
        while o < o2 {
            max = tile::<2, 4>(pairs, x, dw, shape, src, o, i0, max, sign);
            o += 2;
        }
        if o < outputs {
            max = tile::<1, 4>(pairs, x, dw, shape, src, o, i0, max, sign);
        }
        i0 += STRIP;
    }
    while i0 + 4 <= inputs {
        let mut o = 0;
        while o < o2 {
            max = tile::<2, 1>(pairs, x, dw, shape, src, o, i0, max, sign);
            o += 2;
        }
        if o < outputs {
            max = tile::<1, 1>(pairs, x, dw, shape, src, o, i0, max, sign);
        }
        i0 += 4;
    }
    let mut rest = 0;
    for i in i0..inputs {
        for o in 0..outputs {
            let mut a = 0.0f32;
            for n in 0..shape.batch {
                a += pairs[pair_at(shape, n, o)] * x[src.at(n, i)];
            }
            dw[o * inputs + i] = a;
            rest = rest.max(abs_bits(a));
        }
    }
    f32::from_bits(rest.max(max_bits(max)))
}

/// `dw[o0..o0+R][i0..i0+4C]` (inside one block of 16 columns); returns `max` with the stored
/// values' `|·|` bits folded in. Requires `o0` even, `o0 + R ≤ outputs` with `R = 2` or `o0 + 1 =
/// outputs` (the pair block is then 1 wide), `i0 + 4C ≤ inputs` and the lengths checked in
/// `weight_gradient`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
#[allow(clippy::needless_range_loop)] // r, c index the register tile and the offsets it is stored to together
fn tile<const R: usize, const C: usize>(
    pairs: &[f32],
    x: &[f32],
    dw: &mut [f32],
    shape: Shape,
    src: Source,
    o0: usize,
    i0: usize,
    mut max: v128,
    sign: v128,
) -> v128 {
    let Shape { batch, inputs, outputs } = shape;
    assert!(o0.is_multiple_of(2) && o0 + R <= outputs && (R == 2 || o0 + 1 == outputs) && i0 + 4 * C <= inputs);
    let mut acc = [[f32x4_splat(0.0); C]; R];
    // Row n of the pair block starting at output o0 is at o0·batch + n·R (R is the block's width).
    // With no rows, x and the pairs may be empty: the pointers are formed, never read.
    let (mut px, mut pd) = (x.as_ptr().wrapping_add(src.at(0, i0)), pairs.as_ptr().wrapping_add(o0 * batch));
    for _ in 0..batch {
        // SAFETY: row n < batch: x[n][i0..i0+4C] lies at px..px+4C (one block of 16 columns, or
        // 4C ≤ 16 columns in place), δ[n][o0..o0+R] at pd..pd+R inside the pairs. The pointers
        // are advanced past the last row only after its loads, and never read there.
        unsafe {
            let xv: [v128; C] = core::array::from_fn(|c| load(px.add(4 * c)));
            for r in 0..R {
                let dv = v128_load32_splat(pd.add(r) as *const u32);
                for c in 0..C {
                    acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(dv, xv[c]));
                }
            }
            px = px.wrapping_add(src.row);
            pd = pd.wrapping_add(R);
        }
    }
    let pw = dw.as_mut_ptr();
    for r in 0..R {
        for c in 0..C {
            // SAFETY: o0 + r < outputs and i0 + 4c + 4 ≤ inputs: inside dw (`outputs × inputs`),
            // which is borrowed mutably.
            unsafe { store(pw.add((o0 + r) * inputs + i0 + 4 * c), acc[r][c]) };
            max = u32x4_max(max, v128_and(acc[r][c], sign));
        }
    }
    max
}

/// `db = Σₙ δ` (contract: `super::check_bias`, asserted); returns the largest `|db|`.
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) -> f32 {
    check_bias(delta, db, shape);
    let Shape { batch, outputs, .. } = shape;
    let o4 = outputs & !3;
    let pd = delta.as_ptr();
    let sign = u32x4_splat(0x7fff_ffff);
    let mut max = u32x4_splat(0);
    let mut o = 0;
    while o < o4 {
        let mut acc = f32x4_splat(0.0);
        for n in 0..batch {
            // SAFETY: n < batch and o + 4 ≤ outputs: inside delta (`batch × outputs`).
            acc = f32x4_add(acc, unsafe { load(pd.add(n * outputs + o)) });
        }
        // SAFETY: o + 4 ≤ outputs = db.len(); db is borrowed mutably.
        unsafe { store(db.as_mut_ptr().add(o), acc) };
        max = u32x4_max(max, v128_and(acc, sign));
        o += 4;
    }
    let mut rest = 0;
    for o in o4..outputs {
        let mut s = 0.0f32;
        for n in 0..batch {
            s += delta[n * outputs + o];
        }
        db[o] = s;
        rest = rest.max(abs_bits(s));
    }
    f32::from_bits(rest.max(max_bits(max)))
}
