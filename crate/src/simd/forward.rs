//! `z = x·wsumᵀ + b` as register-blocked dot products over the contiguous `inputs`.
//!
//! A tile is `R` batch rows × `C` outputs with one `f32x4` accumulator per dot product
//! (4×2: 8 accumulators + 6 operand vectors, inside x64's 16 registers once V8 allocates
//! them; more accumulators spill — see shared/FACTS.md). Each accumulator is exactly the
//! scalar dot product's four lanes, reduced and finished the same way, so `z` matches the
//! scalar flavour bit for bit. Const generics give the tail tiles (fewer rows or one output)
//! the same code.

use core::arch::wasm32::*;

use super::{hsum, load};
use crate::shape::Shape;

pub fn gemm(x: &[f32], wsum: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    let Shape { batch, inputs, outputs } = shape;
    assert!(x.len() == shape.x_len() && wsum.len() == shape.w_len() && b.len() == outputs && z.len() == shape.z_len());
    // Only four tile shapes are instantiated (4×2, 4×1 and, for the last batch % 4 rows,
    // 1×2, 1×1): more would grow the module by ~1.5 KB each for little gain.
    let mut n = 0;
    while n + 4 <= batch {
        rows::<4>(x, wsum, z, shape, n);
        n += 4;
    }
    while n < batch {
        rows::<1>(x, wsum, z, shape, n);
        n += 1;
    }
    // Finish every dot product as the scalar one does: the leftover inputs in order, then b.
    let n4 = inputs & !3;
    for n in 0..batch {
        let xr = &x[n * inputs..][..inputs];
        for o in 0..outputs {
            let wr = &wsum[o * inputs..][..inputs];
            let zo = &mut z[n * outputs + o];
            let mut s = *zo;
            for i in n4..inputs {
                s += xr[i] * wr[i];
            }
            *zo = s + b[o];
        }
    }
}

#[inline(always)]
fn rows<const R: usize>(x: &[f32], wsum: &[f32], z: &mut [f32], shape: Shape, n0: usize) {
    let mut o = 0;
    while o + 2 <= shape.outputs {
        tile::<R, 2>(x, wsum, z, shape, n0, o);
        o += 2;
    }
    if o < shape.outputs {
        tile::<R, 1>(x, wsum, z, shape, n0, o);
    }
}

/// `z[n0..n0+R][o0..o0+C]` = the lane-reduced dot products over the first `inputs - inputs % 4`
/// inputs. Requires `n0 + R ≤ batch`, `o0 + C ≤ outputs` and the lengths checked in `gemm`.
#[inline(always)]
fn tile<const R: usize, const C: usize>(x: &[f32], wsum: &[f32], z: &mut [f32], shape: Shape, n0: usize, o0: usize) {
    let Shape { batch, inputs, outputs } = shape;
    assert!(n0 + R <= batch && o0 + C <= outputs);
    let n4 = inputs & !3;
    let xp: [*const f32; R] = core::array::from_fn(|r| x[(n0 + r) * inputs..][..inputs].as_ptr());
    let wp: [*const f32; C] = core::array::from_fn(|c| wsum[(o0 + c) * inputs..][..inputs].as_ptr());
    let mut acc = [[f32x4_splat(0.0); C]; R];
    let mut i = 0;
    while i < n4 {
        // SAFETY: every pointer starts a row of `inputs` floats (sliced above) and
        // i + 4 ≤ n4 ≤ inputs.
        let wv: [v128; C] = core::array::from_fn(|c| unsafe { load(wp[c].add(i)) });
        for r in 0..R {
            // SAFETY: as above.
            let xv = unsafe { load(xp[r].add(i)) };
            for c in 0..C {
                acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(xv, wv[c]));
            }
        }
        i += 4;
    }
    for r in 0..R {
        for c in 0..C {
            z[(n0 + r) * outputs + o0 + c] = hsum(acc[r][c]);
        }
    }
}
