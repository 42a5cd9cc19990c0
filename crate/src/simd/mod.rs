//! SIMD128 bodies of the hot loops, compiled only for `wasm32` with `+simd128` (chosen at
//! compile time, like memchr's per-architecture modules).
//!
//! Each body performs the same operations in the same order as the scalar body beside its
//! kernel (`crate::forward::scalar`, …), so the two flavours give identical bits; the tests
//! check that. Multiplies and adds are separate instructions on purpose: a fused
//! multiply-add exists only in relaxed-simd (`f32x4_relaxed_madd`), which Node 20 does not
//! enable, and a module containing any relaxed opcode fails to compile there even if the
//! code never runs. On this CPU it would gain only ~12% at peak anyway (separate add pipes).

use core::arch::wasm32::{v128, v128_load, v128_store};

pub mod adam;
pub mod elementwise;
pub mod forward;
pub mod gradients;
pub mod math;
pub mod objective;
pub mod pack;
pub mod sgd;

/// Loads 4 floats (no alignment needed in wasm).
///
/// # Safety
/// `p..p+4` must be readable floats.
#[inline(always)]
unsafe fn load(p: *const f32) -> v128 {
    // SAFETY: the caller guarantees 4 readable floats; wasm loads need no alignment.
    unsafe { v128_load(p as *const v128) }
}

/// Stores 4 floats.
///
/// # Safety
/// `p..p+4` must be writable floats not aliased by a live reference.
#[inline(always)]
unsafe fn store(p: *mut f32, v: v128) {
    // SAFETY: the caller guarantees 4 writable, unaliased floats; no alignment needed.
    unsafe { v128_store(p as *mut v128, v) }
}
