//! entrograd's core: one sigmoid layer trained by minimising entropy.
//!
//! * `abi`: the records TypeScript and the core exchange, declared once (`ts/core/abi.ts` and
//!   the tables of docs/core-abi.md are generated from it).
//! * `bindings` (wasm32 only): the exports; the one place that touches raw memory. It decodes
//!   the args block, validates every region and dispatches to the drivers.
//! * `step`: the drivers (`forward_pass`, `objective_pass`, `gradients_pass`, `step`), pure
//!   functions on slices that never allocate.
//! * `parallel`: the drivers split into chunks of work that threads sharing one memory run
//!   together (the threads module; `bindings/threads.rs` exports them).
//! * `kernels`: what the drivers call. Each kernel lives in a folder (`pack/`, `forward/`,
//!   `objective/`, `gradients/`, `sgd/`, `adam/`): contract and reference in `mod.rs`, one file
//!   per flavour (`scalar.rs`, and `simd128.rs` on wasm32 with `+simd128`). `kernels` picks the
//!   flavour at compile time; the flavours perform the same operations in the same order, so
//!   their results agree bitwise (the tests check it).
//! * Scalar-only passes: `adapt` (test-time adaptation), `clip`, `entropy`; `math` holds the
//!   shared `exp`/`log1p` polynomials (and their SIMD128 forms).

#![deny(unsafe_op_in_unsafe_fn)]

// The two export sets would define the same names.
#[cfg(all(target_arch = "wasm32", feature = "bindgen", feature = "threads"))]
compile_error!(
    "features `bindgen` and `threads` exclude each other: build the threads module with --no-default-features"
);

pub mod abi;
pub mod adam;
pub mod adapt;
pub mod clip;
pub mod entropy;
pub mod forward;
pub mod gradients;
pub mod kernels;
pub mod math;
pub mod objective;
pub mod pack;
pub mod parallel;
pub mod rule;
pub mod sgd;
pub mod shape;
pub mod status;
pub mod step;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod simd;

/// The shipped modules' allocator (feature `small-alloc`; the tests keep std's).
#[cfg(all(target_arch = "wasm32", feature = "small-alloc"))]
pub mod heap;

#[cfg(all(target_arch = "wasm32", feature = "small-alloc"))]
#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();

/// The wasm exports (public so the wasm tests can call them with real memory offsets).
#[cfg(target_arch = "wasm32")]
pub mod bindings;

pub use adapt::{Adapt, AdaptWork};
pub use entropy::entropy_bits;
pub use kernels::{
    adam_update, bias_gradient, gemm, objective, pack_delta, pack_inputs, pack_weights, sgd_update, sigmoid,
    weight_gradient,
};
pub use objective::{LossCoefficients, Totals, UnitOutputs};
pub use pack::pack_len;
pub use rule::{Rule, RuleKind};
pub use shape::Shape;
pub use status::Error;
pub use step::{Input, Layer, Optimizer, Work};

/// `true` when the hot loops run the SIMD128 bodies.
pub const SIMD: bool = cfg!(all(target_arch = "wasm32", target_feature = "simd128"));
