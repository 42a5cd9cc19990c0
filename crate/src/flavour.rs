//! Every compiled flavour of the kernels, as a table of function pointers, so one test helper
//! can run each of them against the same reference (matrixmultiply style).

use crate::adam::Scalars;
use crate::objective::{Totals, Weights};
use crate::sgd::Rule;
use crate::shape::Shape;

type Gemm = fn(&[f32], &[f32], &[f32], &mut [f32], Shape);
type Sgd = fn(&mut [f32], &[f32], Option<&mut [f32]>, &Rule, bool) -> bool;
type Adam = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], &Scalars, bool) -> bool;
type Objective = fn(
    &[f32],
    &mut [f32],
    Option<&[f32]>,
    &Weights,
    Option<&mut [f32]>,
    Option<&mut [f32]>,
    Option<&mut [f32]>,
) -> Totals;

/// One flavour's bodies. Their contracts are the dispatching kernels' (`forward::gemm`,
/// …) with lengths already checked; `sgd_update` takes a non-frozen rule, and `buf` is `Some`
/// exactly when the rule uses a buffer; `adam_update` takes an Adam rule's `Scalars`.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub name: &'static str,
    pub pack_weights: fn(&[f32], &[f32], &mut [f32], Shape),
    pub pack_inputs: fn(&[f32], &mut [f32], Shape),
    pub gemm: Gemm,
    pub sigmoid: fn(&[f32], &mut [f32]),
    pub objective: Objective,
    pub weight_gradient: fn(&[f32], &[f32], &mut [f32], Shape) -> bool,
    pub bias_gradient: fn(&[f32], &mut [f32], Shape),
    pub sgd_update: Sgd,
    pub adam_update: Adam,
}

pub const SCALAR: Kernels = Kernels {
    name: "scalar",
    pack_weights: crate::pack::scalar::pack_weights,
    pack_inputs: crate::pack::scalar::pack_inputs,
    gemm: crate::forward::scalar::gemm,
    sigmoid: crate::forward::scalar::sigmoid,
    objective: crate::objective::scalar::objective,
    weight_gradient: crate::gradients::scalar::weight_gradient,
    bias_gradient: crate::gradients::scalar::bias_gradient,
    sgd_update: crate::sgd::scalar::sgd_update,
    adam_update: crate::adam::scalar::adam_update,
};

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub const SIMD128: Kernels = Kernels {
    name: "simd128",
    pack_weights: crate::simd::pack::pack_weights,
    pack_inputs: crate::simd::pack::pack_inputs,
    gemm: crate::simd::forward::gemm,
    sigmoid: crate::simd::elementwise::sigmoid,
    objective: crate::simd::objective::objective,
    weight_gradient: crate::simd::gradients::weight_gradient,
    bias_gradient: crate::simd::gradients::bias_gradient,
    sgd_update: crate::simd::sgd::sgd_update,
    adam_update: crate::simd::adam::adam_update,
};

/// The flavours compiled into this build: scalar always, SIMD128 on `wasm32` + `simd128`.
pub fn all() -> &'static [Kernels] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return &[SCALAR, SIMD128];
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    &[SCALAR]
}
