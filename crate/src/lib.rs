//! entrograd's core: one sigmoid layer trained by minimising entropy.
//!
//! The kernels are pure functions on `f32` slices, one concept per file; `step` is the fused
//! driver and `bindings` (wasm32 only) the one place that turns the args block of
//! `docs/core-abi.md` into slices. Each kernel has a portable scalar body beside it; on
//! `wasm32` built with `+simd128` the hot loops run the SIMD128 bodies in [`simd`] instead,
//! chosen at compile time. The scalar and SIMD bodies perform the same operations in the same
//! order wherever that is cheap (sums, exp, log1p), so their results agree nearly bitwise.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod adam;
pub mod adapt;
pub mod clip;
pub mod entropy;
pub mod flavour;
pub mod forward;
pub mod gradients;
pub mod math;
pub mod objective;
pub mod sgd;
pub mod shape;
pub mod status;
pub mod step;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd;

/// The wasm exports (public so the wasm tests can call them with real memory offsets).
#[cfg(target_arch = "wasm32")]
pub mod bindings;

pub use adam::adam_update;
pub use adapt::{Adapt, AdaptWork};
pub use entropy::entropy_bits;
pub use forward::{forward, sum_weights};
pub use gradients::{bias_gradient, weight_gradient};
pub use objective::{objective, Totals, Weights};
pub use sgd::{sgd_update, Rule, RuleKind};
pub use shape::Shape;
pub use status::Error;
pub use step::{Layer, Optimizer, Work};

/// `true` when the hot loops run the SIMD128 bodies.
pub const SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));
