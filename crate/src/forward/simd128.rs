//! The SIMD128 flavour of the forward pass: `z = x·(W+G)ᵀ + b` as register-tiled dot products
//! over the packed rows of `crate::pack`, and `d = σ(z)` four units at a time.
//!
//! A tile is `R` rows of `x` × `C` outputs with `R·C = 8` `f32x4` accumulators, lane `l` of
//! accumulator `(r, c)` summing `x[n][i]·s[o][i]` over `i ≡ l (mod 4)` in order; four inputs per
//! step load `R` vectors of `x` and `C` of `W + G`. The tile then folds each accumulator to one
//! value, `(l₀ + l₂) + (l₁ + l₃)` (`reduce4`, four accumulators at a time), adds `b` and stores:
//! exactly `super::dot`. Eight accumulators, the loaded vectors and a product fit in the 15
//! vector registers V8 allocates on x64. Outputs go four at a time (`R = 2`), the last
//! `outputs % 4` in pairs (`R = 4`), so no output is padded but a single last one (which
//! repeats itself in its pair). A last group of fewer than `R` rows repeats its last row and
//! stores only its own. Outputs are the
//! outer loop: a group of rows of `W + G` stays in cache while every row of the block passes it
//! (rows outermost would stream all of `W + G` once per pair of rows).
//!
//! Multiplies and adds are separate on purpose (see `crate::simd`).

use core::arch::wasm32::*;

use super::{check_gemm, sigmoid_elements, stride};
use crate::math::simd128 as math;
use crate::shape::Shape;
use crate::simd::{load, store};

/// `z = x·(W+G)ᵀ + b` (contract: `super::check_gemm`, asserted: the tiles index unchecked).
pub fn gemm(x: &[f32], weights: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    check_gemm(x, weights, b, z, shape);
    let outputs = shape.outputs;
    let o4 = outputs & !3;
    let mut o = 0;
    while o < o4 {
        rows::<2, 4>(x, weights, b, z, shape, o);
        o += 4;
    }
    if o < outputs {
        // The last 1–3 outputs as pairs; a single one repeats itself in the pair's second column
        // and stores only its own (an 8 × 1 tile would add ~1.5 KB of module for one output).
        while o < outputs {
            rows::<4, 2>(x, weights, b, z, shape, o);
            o += 2;
        }
    }
}

#[inline(always)]
fn rows<const R: usize, const C: usize>(x: &[f32], weights: &[f32], b: &[f32], z: &mut [f32], shape: Shape, o0: usize) {
    let mut n = 0;
    while n < shape.batch {
        tile::<R, C>(x, weights, b, z, shape, n, o0);
        n += R;
    }
}

/// `[a, b, c, d]` folded: lane `j` is `((j₀ + j₂) + (j₁ + j₃))` of the `j`-th argument.
#[inline(always)]
fn reduce4(a: v128, b: v128, c: v128, d: v128) -> v128 {
    let ab = f32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = f32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    // ab = [a₀+a₂, b₀+b₂, a₁+a₃, b₁+b₃], cd likewise.
    f32x4_add(i64x2_shuffle::<0, 2>(ab, cd), i64x2_shuffle::<1, 3>(ab, cd))
}

/// The last `rem` (1–3) floats at `p` in the low lanes, zeros above.
///
/// # Safety
/// `p..p+rem` must be readable floats.
#[inline(always)]
unsafe fn load_partial(p: *const f32, rem: usize) -> v128 {
    // SAFETY: the caller guarantees `rem` readable floats; no load reaches past them.
    unsafe {
        match rem {
            1 => v128_load32_zero(p as *const u32),
            2 => v128_load64_zero(p as *const u64),
            _ => v128_load32_lane::<2>(v128_load64_zero(p as *const u64), p.add(2) as *const u32),
        }
    }
}

/// `z[n0..n0+R][o0..o0+C]`, the rows of it inside `z`. Requires `n0 < batch`, `o0 + C ≤
/// outputs` and the lengths checked in `gemm`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // r, c index the register tile and the offsets it is stored to together
fn tile<const R: usize, const C: usize>(
    x: &[f32],
    weights: &[f32],
    b: &[f32],
    z: &mut [f32],
    shape: Shape,
    n0: usize,
    o0: usize,
) {
    let Shape { batch, inputs, outputs } = shape;
    let s = stride(shape);
    assert!(n0 < batch && o0 < outputs && weights.len() >= outputs * s);
    let rows = (batch - n0).min(R);
    // A last group of fewer than C outputs (one output in a pair) repeats its last output.
    let cols = (outputs - o0).min(C);
    let xp: [*const f32; R] = core::array::from_fn(|r| x[(n0 + r.min(rows - 1)) * inputs..][..inputs].as_ptr());
    let wp: [*const f32; C] = core::array::from_fn(|c| weights[(o0 + c.min(cols - 1)) * s..][..s].as_ptr());
    let mut acc = [[f32x4_splat(0.0); C]; R];
    let i4 = inputs & !3;
    let mut i = 0;
    while i < i4 {
        // SAFETY: i + 4 ≤ inputs ≤ s: inside every row of x and of the packed weights.
        unsafe {
            if R <= C {
                let xv: [v128; R] = core::array::from_fn(|r| load(xp[r].add(i)));
                for c in 0..C {
                    let wv = load(wp[c].add(i));
                    for r in 0..R {
                        acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(xv[r], wv));
                    }
                }
            } else {
                let wv: [v128; C] = core::array::from_fn(|c| load(wp[c].add(i)));
                for r in 0..R {
                    let xv = load(xp[r].add(i));
                    for c in 0..C {
                        acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(xv, wv[c]));
                    }
                }
            }
        }
        i += 4;
    }
    if i < inputs {
        // The last 1–3 inputs: x read exactly (zeros above), the packed rows padded with zeros.
        // SAFETY: i + rem = inputs: inside every row of x; i + 4 ≤ s: inside the packed rows.
        unsafe {
            let wv: [v128; C] = core::array::from_fn(|c| load(wp[c].add(i)));
            for r in 0..R {
                let xv = load_partial(xp[r].add(i), inputs - i);
                for c in 0..C {
                    acc[r][c] = f32x4_add(acc[r][c], f32x4_mul(xv, wv[c]));
                }
            }
        }
    }
    // Fold and store, four accumulators at a time in the order (r, c) row by row: with C = 4 a
    // group is one row's four outputs, with C = 2 two rows' pairs, with C = 1 four rows.
    let pz = z.as_mut_ptr();
    let mut k = 0;
    while k < R * C {
        let a: [v128; 4] = core::array::from_fn(|j| acc[(k + j) / C][(k + j) % C]);
        let v = reduce4(a[0], a[1], a[2], a[3]);
        let r0 = k / C;
        // SAFETY (every store): each row stored is < n0 + rows ≤ batch and each output < o0 + C ≤
        // outputs: inside z (`batch × outputs`), borrowed mutably; b has `outputs` floats.
        unsafe {
            match C {
                4 => {
                    if r0 < rows {
                        store(pz.add((n0 + r0) * outputs + o0), f32x4_add(v, load(b.as_ptr().add(o0))));
                    }
                }
                2 if cols == 2 => {
                    let bv = v128_load64_splat(b.as_ptr().add(o0) as *const u64);
                    let v = f32x4_add(v, bv);
                    if r0 < rows {
                        v128_store64_lane::<0>(v, pz.add((n0 + r0) * outputs + o0) as *mut u64);
                    }
                    if r0 + 1 < rows {
                        v128_store64_lane::<1>(v, pz.add((n0 + r0 + 1) * outputs + o0) as *mut u64);
                    }
                }
                2 => {
                    // One output: lanes 0 and 2 are its rows r0 and r0 + 1.
                    let v = f32x4_add(v, v128_load32_splat(b.as_ptr().add(o0) as *const u32));
                    if r0 < rows {
                        *pz.add((n0 + r0) * outputs + o0) = f32x4_extract_lane::<0>(v);
                    }
                    if r0 + 1 < rows {
                        *pz.add((n0 + r0 + 1) * outputs + o0) = f32x4_extract_lane::<2>(v);
                    }
                }
                _ => unreachable!("tiles are 2 × 4 or 4 × 2"),
            }
        }
        k += 4;
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
