//! The kernels the drivers call: each checks its contract (`<kernel>/mod.rs`) and runs the
//! flavour this build compiles, chosen here, once.
//!
//! Every kernel folder (`pack/`, `forward/`, `objective/`, `gradients/`, `sgd/`, `adam/`) holds
//! its contract, shared helpers and the per-element reference in `mod.rs`, and one file per
//! flavour below it: `scalar.rs` (portable, always compiled, the fallback) and `simd128.rs`
//! (wasm32 with `+simd128`). Flavours depend on their `mod.rs`, never on each other. A new
//! flavour is a file in each folder, a `use_flavour!` line here and a row in the tests' table
//! (`crate/tests/common`), which runs every compiled flavour against the same reference.

use crate::objective::{self as objective_contract, LossCoefficients, Totals, UnitOutputs};
use crate::rule::Rule;
use crate::shape::Shape;
use crate::{adam, forward, gradients, pack, sgd};

/// The flavour's bodies, by the name of their file in each kernel folder.
macro_rules! use_flavour {
    ($f:ident) => {
        /// The flavour this build runs.
        pub const FLAVOUR: &str = stringify!($f);
        mod flavour {
            pub use crate::adam::$f::adam_update;
            pub use crate::forward::$f::{gemm, sigmoid};
            pub use crate::gradients::$f::{bias_gradient, weight_gradient};
            pub use crate::objective::$f::objective;
            pub use crate::pack::$f::{pack_inputs, pack_weights};
            pub use crate::sgd::$f::sgd_update;
        }
    };
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use_flavour!(simd128);
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
use_flavour!(scalar);

/// `weights ← w + g` in padded rows (`crate::pack`). `w`, `g` are `outputs × inputs`; `weights`
/// has at least `pack::weights_len(shape)` floats. Returns `max |w|` and `max |g|` (NaN when
/// either holds a NaN).
pub fn pack_weights(w: &[f32], g: &[f32], weights: &mut [f32], shape: Shape) -> [f32; 2] {
    pack::check_weights(w, g, weights, shape);
    flavour::pack_weights(w, g, weights, shape)
}

/// `strips ← x` in strips (`crate::pack`), for a shape that `pack::packs_inputs`. `x` is
/// `batch × inputs`; `strips` has at least `pack::strips_len(shape)` floats.
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    pack::check_inputs(x, strips, shape);
    flavour::pack_inputs(x, strips, shape);
}

/// `pairs ← δ` in pairs of outputs (`crate::pack`, the same in every flavour). `delta` is
/// `batch × outputs`, `pairs` has at least as many floats.
pub fn pack_delta(delta: &[f32], pairs: &mut [f32], shape: Shape) {
    pack::pack_delta(delta, pairs, shape);
}

/// `z = x·(W+G)ᵀ + b` for every row of `x` (`batch × inputs`), from `weights` (packed by
/// `pack_weights` for the same `inputs` and `outputs`). Overwrites all of `z`.
pub fn gemm(x: &[f32], weights: &[f32], b: &[f32], z: &mut [f32], shape: Shape) {
    forward::check_gemm(x, weights, b, z, shape);
    flavour::gemm(x, weights, b, z, shape);
}

/// `d = σ(z)`, elementwise; `z` and `d` have the same length.
pub fn sigmoid(z: &[f32], d: &mut [f32]) {
    assert!(z.len() == d.len());
    flavour::sigmoid(z, d);
}

/// Evaluates the objective over `z` (and `targets` when `αC ≠ 0`), all `batch × outputs`.
/// Writes `d = σ(z)` (the same bits as `sigmoid`) and the outputs given (`δ`, each unit's `H`
/// and loss): one evaluation of `exp(-|z|)` serves them all. Panics if `αC ≠ 0` and `targets`
/// is `None`, or on mismatched lengths.
pub fn objective(z: &[f32], d: &mut [f32], targets: Option<&[f32]>, c: &LossCoefficients, out: UnitOutputs) -> Totals {
    let targets = (c.cross_entropy != 0.0).then(|| targets.expect("cross-entropy needs targets"));
    objective_contract::check(z, d, targets, &out);
    flavour::objective(z, d, targets, c, out)
}

/// `dw[o][i] = Σₙ δ[n][o]·x[n][i]`. Reads `δ` in pairs (`pack_delta`) and `x`: the batch
/// itself, or its strips (`pack_inputs`) where `pack::packs_inputs(shape)`; overwrites all of
/// `dw` (`outputs × inputs`). Returns the largest `|dw|`: not finite exactly when a value
/// written is not.
pub fn weight_gradient(pairs: &[f32], x: &[f32], dw: &mut [f32], shape: Shape) -> f32 {
    gradients::check_weight(pairs, x, dw, shape);
    flavour::weight_gradient(pairs, x, dw, shape)
}

/// `db[o] = Σₙ δ[n][o]`. Overwrites all of `db` (`outputs`); returns the largest `|db|`.
pub fn bias_gradient(delta: &[f32], db: &mut [f32], shape: Shape) -> f32 {
    gradients::check_bias(delta, db, shape);
    flavour::bias_gradient(delta, db, shape)
}

/// Updates `theta` from `grad` by an SGD `rule` (or, with `write = false`, only computes the
/// update). Returns `true` when every value written (or that would be written) to `theta` and
/// `buf` is finite. A rule of another kind touches nothing and returns `true`. `buf` must be
/// given, with the length of `theta`, when `rule.uses_buffer()`; it is ignored otherwise.
pub fn sgd_update(theta: &mut [f32], grad: &[f32], buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
    match sgd::check(theta, grad, buf, rule) {
        Some(buf) => flavour::sgd_update(theta, grad, buf, rule, write),
        None => true,
    }
}

/// Updates `theta` from `grad` by an Adam `rule` with moments `m` (exp_avg) and `v`
/// (exp_avg_sq), all of `theta`'s length (or, with `write = false`, only computes the update).
/// Returns `true` when every value written (or that would be written) to `theta`, `m` and `v`
/// is finite. A rule of another kind touches nothing and returns `true`.
pub fn adam_update(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], rule: &Rule, write: bool) -> bool {
    match adam::check(theta, grad, m, v, rule) {
        Some(s) => flavour::adam_update(theta, grad, m, v, &s, write),
        None => true,
    }
}
