//! The SIMD128 flavour of the forward pass: `z = x·(W+G)ᵀ + b` as a register-blocked GEMM over
//! the panels of `crate::pack`, and `d = σ(z)` four units at a time.
//!
//! A tile is `R` rows of `x` × one panel (`4C` outputs): `R·C` `f32x4` accumulators, one lane
//! per `(n, o)`. For each input `i` it loads the panel's `C` vectors and splats `x[n][i]`
//! (`v128.load32_splat`) for each row, so every lane adds `x[n][i]·s[o][i]` in order of `i` —
//! exactly the scalar flavour's sum. 4×2 needs 8 accumulators + 2 panel vectors + a splat +
//! a product: inside the 15 vector registers V8 allocates on x64 (measured: more accumulators
//! spill). The tile then adds `b` and stores `z` rows as vectors. Multiplies and adds are
//! separate on purpose (see `crate::simd`).

use core::arch::wasm32::*;

use super::{check_gemm, sigmoid_elements};
use crate::math::simd128 as math;
use crate::pack::blocks;
use crate::shape::Shape;
use crate::simd::{load, store};

/// Rows per tile.
const R: usize = 4;

/// `z = x·(W+G)ᵀ + b` (contract: `super::check_gemm`, asserted: the tiles index unchecked).
pub fn gemm(x: &[f32], panels: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    check_gemm(x, panels, b, z, shape);
    for (o0, wd) in blocks(shape.outputs) {
        let panel = &panels[o0 * shape.inputs..][..wd * shape.inputs];
        if wd == 8 {
            rows::<2>(x, panel, b, z, shape, o0);
        } else {
            rows::<1>(x, panel, b, z, shape, o0);
        }
    }
}

#[inline(always)]
fn rows<const C: usize>(x: &[f32], panel: &[f32], b: &[f32], z: &mut [f32], shape: Shape, o0: usize) {
    let mut n = 0;
    while n < shape.batch {
        tile::<C>(x, panel, b, z, shape, n, o0);
        n += R;
    }
}

/// `z[n0..n0+R][o0..o0+4C]`, the part of it inside `z`. Requires `n0 < batch`, a panel of
/// `4C × inputs` floats for outputs `o0..` and the lengths checked in `gemm`. A last tile of
/// fewer than `R` rows repeats its last row in the missing ones and stores only its own: one
/// tile shape serves every batch size (two more would cost ~2 KB of module for little time).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // r, c index the register tile and the offsets it is stored to together
fn tile<const C: usize>(x: &[f32], panel: &[f32], b: &[f32], z: &mut [f32], shape: Shape, n0: usize, o0: usize) {
    let Shape { batch, inputs, outputs } = shape;
    assert!(n0 < batch && panel.len() == 4 * C * inputs && o0 < outputs);
    let rows = (batch - n0).min(R);
    let xp: [*const f32; R] = core::array::from_fn(|r| x[(n0 + r.min(rows - 1)) * inputs..][..inputs].as_ptr());
    let pp = panel.as_ptr();
    let mut acc = [[f32x4_splat(0.0); C]; R];
    for i in 0..inputs {
        // SAFETY: i < inputs: the panel holds 4C floats per input, each x row `inputs` floats.
        let pv: [v128; C] = core::array::from_fn(|c| unsafe { load(pp.add(i * 4 * C + 4 * c)) });
        for r in 0..R {
            // SAFETY: as above.
            let xs = unsafe { v128_load32_splat(xp[r].add(i) as *const u32) };
            for c in 0..C {
                acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(xs, pv[c]));
            }
        }
    }
    let valid = (4 * C).min(outputs - o0);
    if valid == 4 * C {
        let pb = b[o0..o0 + 4 * C].as_ptr();
        // SAFETY: o0 + 4C ≤ outputs = b.len().
        let bv: [v128; C] = core::array::from_fn(|c| unsafe { load(pb.add(4 * c)) });
        let pz = z.as_mut_ptr();
        for r in 0..rows {
            for c in 0..C {
                // SAFETY: row n0 + r < batch, outputs o0 + 4c..o0 + 4c + 4 ≤ outputs: inside z
                // (`batch × outputs`), borrowed mutably.
                unsafe { store(pz.add((n0 + r) * outputs + o0 + 4 * c), f32x4_add(acc[r][c], bv[c])) };
            }
        }
    } else {
        // A padded last panel: add b and store lane by lane.
        for r in 0..rows {
            let mut lanes = [0.0f32; 8];
            for c in 0..C {
                // SAFETY: 4c + 4 ≤ 4C ≤ 8 = lanes.len().
                unsafe { store(lanes.as_mut_ptr().add(4 * c), acc[r][c]) };
            }
            let zr = &mut z[(n0 + r) * outputs + o0..][..valid];
            for (k, zo) in zr.iter_mut().enumerate() {
                *zo = lanes[k] + b[o0 + k];
            }
        }
    }
}

/// `d = σ(z)`, as the scalar flavour; `z` and `d` have the same length.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    let n = z.len();
    assert!(d.len() == n);
    let n4 = n & !3;
    let (pz, pd) = (z.as_ptr(), d.as_mut_ptr());
    let mut i = 0;
    while i < n4 {
        // SAFETY: i + 4 ≤ n4 ≤ n = z.len() = d.len(); `d` is borrowed mutably.
        unsafe { store(pd.add(i), math::sigmoid(load(pz.add(i)))) };
        i += 4;
    }
    sigmoid_elements(&z[n4..], &mut d[n4..]);
}
