//! What every SIMD128 flavour (`<kernel>/simd128.rs`) shares: unaligned loads and stores of four
//! floats. Compiled only for `wasm32` with `+simd128`.
//!
//! Each SIMD128 body performs the same operations in the same order as its kernel's scalar
//! flavour, so the two give identical bits; the tests check that. Multiplies and adds are
//! separate instructions on purpose: a fused multiply-add exists only in relaxed-simd
//! (`f32x4_relaxed_madd`), which Node 20 does not enable, and a module containing any relaxed
//! opcode fails to compile there even if the code never runs. On this CPU it would gain only
//! ~12% at peak anyway (separate add pipes).

use core::arch::wasm32::{v128, v128_load, v128_store};

/// Loads 4 floats (no alignment needed in wasm).
///
/// # Safety
/// `p..p+4` must be readable floats.
#[inline(always)]
pub(crate) unsafe fn load(p: *const f32) -> v128 {
    // SAFETY: the caller guarantees 4 readable floats; wasm loads need no alignment.
    unsafe { v128_load(p as *const v128) }
}

/// Stores 4 floats.
///
/// # Safety
/// `p..p+4` must be writable floats not aliased by a live reference.
#[inline(always)]
pub(crate) unsafe fn store(p: *mut f32, v: v128) {
    // SAFETY: the caller guarantees 4 writable, unaliased floats; no alignment needed.
    unsafe { v128_store(p as *mut v128, v) }
}

/// The largest of the four lanes, as unsigned integers (lanes holding `|x|` bits: the largest
/// `|x|`, NaN above ∞).
#[inline(always)]
pub(crate) fn max_bits(v: core::arch::wasm32::v128) -> u32 {
    use core::arch::wasm32::*;
    let m = u32x4_max(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let m = u32x4_max(m, i32x4_shuffle::<1, 0, 3, 2>(m, m));
    u32x4_extract_lane::<0>(m)
}
