//! Packing: the layouts the two GEMMs read, written into the caller's scratch (`pack` in the
//! args block) once per call.
//!
//! * **Weights**: `W + G` summed once per call, row-major like `W`, each row padded with zeros
//!   to `weights_stride(inputs)` floats (a multiple of 4). The forward GEMM takes dot products
//!   of `x` rows with these rows four inputs at a time, so no transposition is needed and any
//!   number of outputs works without padding outputs (10 outputs cost 10, not 12).
//! * **Strips** of `x`, only where `packs_inputs` says so: strip `s` holds `x[n][16s + j]` at
//!   `n·16 + j` (zeros pad the last strip). The weight gradient walks the batch down 16 columns
//!   of `x`; read in place, the rows of a column lie `inputs` floats apart, and when that stride
//!   is a multiple of a large power of two every row falls into the same few sets of the L1
//!   cache (measured: the gradient at half speed for `inputs = 1024`). A strip is contiguous.
//!   Elsewhere the gradient reads `x` itself and the packing is skipped.
//!
//! * **Pairs** of `δ`: block `p` holds `δ[n][2p + j]` at `2p·batch + n·2 + j` (the last block
//!   of an odd count is 1 wide), `batch × outputs` floats. The weight gradient splats `δ[n][o]`
//!   for two outputs per row of the batch; from `δ` itself those come from a new cache line for
//!   every row (measured: the gradient at 47 GFLOP/s at size E, 58 from pairs).
//!
//! The layouts are the same in every flavour, so the flavours read the same numbers. Packing
//! `W + G` also yields `max |w|` and `max |g|`, which `step` needs to prove an update finite
//! without a checking pass (`crate::step`).
//!
//! Flavours: `scalar.rs` (portable), `simd128.rs`; `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::shape::Shape;

/// Inputs per strip of `x`: 64 bytes, one cache line of each row.
pub const STRIP: usize = 16;

/// The L1 data cache the strip rule models: 64-byte lines, 64 sets of 12 ways (48 KiB; AMD Zen
/// 4 and 5, and Intel since Ice Lake have this geometry or a larger one).
const L1_SETS: usize = 64;
const L1_WAYS: usize = 12;

/// Floats per packed row of `W + G`: `inputs` rounded up to a multiple of 4.
pub const fn weights_stride(inputs: usize) -> Option<usize> {
    match inputs.checked_add(3) {
        Some(n) => Some(n & !3),
        None => None,
    }
}

/// Floats of the packed `W + G` for `shape`; `None` on overflow.
pub const fn weights_len(shape: Shape) -> Option<usize> {
    match weights_stride(shape.inputs) {
        Some(s) => s.checked_mul(shape.outputs),
        None => None,
    }
}

const fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Whether the weight gradient reads `x` from strips (else from `x` itself). Rows a multiple of
/// 64 bytes apart put the same column of every row into `L1_SETS / gcd(stride in lines,
/// L1_SETS)` sets; the batch's rows of one column then stay cached only if that many sets hold
/// them. Anything else (rows not line-aligned spread over every set) is read in place.
pub const fn packs_inputs(shape: Shape) -> bool {
    let Shape { batch, inputs, .. } = shape;
    if inputs == 0 || !inputs.is_multiple_of(STRIP) {
        return false;
    }
    let sets = L1_SETS / gcd(inputs / STRIP, L1_SETS);
    batch > L1_WAYS * sets
}

/// Floats of the strips of `x` for `shape` (0 where `x` is read in place); `None` on overflow.
pub const fn strips_len(shape: Shape) -> Option<usize> {
    if !packs_inputs(shape) {
        return Some(0);
    }
    // packs_inputs implies inputs is a multiple of STRIP: no rounding needed.
    shape.batch.checked_mul(shape.inputs)
}

/// Floats of packing scratch a call needs: the packed weights, the strips, then the pairs of
/// `δ` (`pack_floats` export).
pub const fn pack_len(shape: Shape) -> Option<usize> {
    match (weights_len(shape), strips_len(shape), shape.batch.checked_mul(shape.outputs)) {
        (Some(p), Some(s), Some(d)) => match p.checked_add(s) {
            Some(ps) => ps.checked_add(d),
            None => None,
        },
        _ => None,
    }
}

/// `|δ|` below this is 0 in the pairs the weight gradient reads (`pack_delta`): 2⁻¹⁰⁰ ≈ 7.9e-31.
/// Saturated units (`|z| ≳ 66`) have such tiny `δ`, and their products with `x` are subnormal
/// floats, which x86 computes slowly (measured: the step at size B 2.4× slower on a batch of
/// units at `|z| ≈ 86`) and WebAssembly cannot flush. Each `dw[o][i]` then lacks
/// `Σ_{n: |δ[n][o]| < 2⁻¹⁰⁰} δ[n][o]·x[n][i]`, at most `2⁻¹⁰⁰·Σₙ |x[n][i]|` (for `|x| ≤ 1` and a
/// batch of 2¹⁶, below 2⁻⁸⁴); the products of the `δ` kept are normal floats for every `|x| ≥
/// 2⁻²⁶`. `δ` itself (the objective's output) and `db` are unchanged.
pub const DELTA_FLUSH: f32 = 7.888_609e-31;

/// `v`, or 0 where `|v| < DELTA_FLUSH` (NaN kept).
#[inline(always)]
pub fn flush(v: f32) -> f32 {
    if v.abs() < DELTA_FLUSH {
        0.0
    } else {
        v
    }
}

/// Where `pack_delta` puts `δ[n][o]`.
#[inline(always)]
pub fn pair_at(shape: Shape, n: usize, o: usize) -> usize {
    let start = o & !1;
    let width = (shape.outputs - start).min(2);
    start * shape.batch + n * width + (o - start)
}

/// `pairs ← δ` in pairs of outputs, `flush`ed (`batch × outputs` floats; the same in every
/// flavour).
pub fn pack_delta(delta: &[f32], pairs: &mut [f32], shape: Shape) {
    let Shape { batch, outputs, .. } = shape;
    assert!(delta.len() == shape.z_len() && pairs.len() >= shape.z_len());
    let full = outputs / 2;
    for n in 0..batch {
        let row = &delta[n * outputs..][..outputs];
        for p in 0..full {
            let at = 2 * (p * batch + n);
            pairs[at] = flush(row[2 * p]);
            pairs[at + 1] = flush(row[2 * p + 1]);
        }
        if outputs % 2 == 1 {
            pairs[2 * full * batch + n] = flush(row[outputs - 1]);
        }
    }
}

/// `pack_weights`' contract: `w`, `g` are `outputs × inputs`; `weights` has at least
/// `weights_len(shape)` floats.
pub fn check_weights(w: &[f32], g: &[f32], weights: &[f32], shape: Shape) {
    assert!(w.len() == shape.w_len() && g.len() == shape.w_len());
    assert!(weights_len(shape).is_some_and(|n| weights.len() >= n));
}

/// `pack_inputs`' contract: `x` is `batch × inputs`, the shape packs its inputs, and `strips`
/// has at least `strips_len(shape)` floats.
pub fn check_inputs(x: &[f32], strips: &[f32], shape: Shape) {
    assert!(x.len() == shape.x_len() && packs_inputs(shape));
    assert!(strips_len(shape).is_some_and(|n| strips.len() >= n));
}

/// `|v|`'s bits: for floats without their sign, the unsigned order of the bits is the order of
/// the values, with NaN above ∞ (so a running maximum of these is NaN as soon as one value is).
#[inline(always)]
pub fn abs_bits(v: f32) -> u32 {
    v.to_bits() & 0x7fff_ffff
}

/// One row of `w + g`, element by element, padded with zeros to `row.len()`; returns the row's
/// largest `|w|` and `|g|` bits. Every row in the scalar flavour, the last `inputs % 4` columns
/// in the SIMD flavour.
#[inline(always)]
pub fn write_row(w: &[f32], g: &[f32], row: &mut [f32], mut max: [u32; 2]) -> [u32; 2] {
    for (k, v) in row.iter_mut().enumerate() {
        *v = if k < w.len() {
            max = [max[0].max(abs_bits(w[k])), max[1].max(abs_bits(g[k]))];
            w[k] + g[k]
        } else {
            0.0
        };
    }
    max
}
