//! The wasm exports of docs/core-abi.md, and the only place that touches raw memory.
//!
//! A call is three steps, each its own function: `memory::read` copies the args block out of
//! memory (decode); `validate::validate` checks every region the call will touch (non-zero,
//! aligned, inside linear memory, no written region overlapping any other) and decodes the
//! records it points at; `dispatch` builds the slices and runs the driver. The core writes only
//! the arrays an export outputs and the `Results` record; TypeScript's records are never
//! written. A malformed block returns status 5, having written nothing, instead of being
//! undefined behaviour.

mod memory;
#[cfg(feature = "threads")]
mod threads;
mod validate;

use core::alloc::Layout;
use std::alloc::{alloc_zeroed, dealloc};

#[cfg(feature = "bindgen")]
use wasm_bindgen::prelude::wasm_bindgen;

use crate::abi::{Args, Ptr, Results};
use crate::objective::Totals;
use crate::shape::Shape;
use crate::status::Error;
use crate::step::{self, Input};
use validate::Plan;

/// Byte layout of `n` floats: 16-byte aligned, at least 16 bytes (so `allocate(0)` returns a
/// distinct live block too). `None` when the byte count overflows `u32` or `isize`.
fn layout(n_floats: u32) -> Option<Layout> {
    let bytes = n_floats.checked_mul(4)?.max(16);
    Layout::from_size_align(bytes as usize, 16).ok()
}

/// A zero-filled, 16-byte-aligned block of `n_floats` floats; 0 when memory cannot grow.
#[cfg_attr(feature = "bindgen", wasm_bindgen)]
pub fn allocate(n_floats: u32) -> u32 {
    match layout(n_floats) {
        // SAFETY: the layout has a non-zero size; a null result (memory cannot grow) is
        // returned as 0 instead of aborting.
        Some(l) => unsafe { alloc_zeroed(l) as usize as u32 },
        None => 0,
    }
}

/// Frees a block from `allocate(n_floats)`. `ptr = 0` is ignored.
#[cfg_attr(feature = "bindgen", wasm_bindgen)]
pub fn release(ptr: u32, n_floats: u32) {
    if ptr == 0 {
        return;
    }
    if let Some(l) = layout(n_floats) {
        // SAFETY: by the ABI, `ptr` came from `allocate(n_floats)`, which used this same layout,
        // and is released once.
        unsafe { dealloc(ptr as usize as *mut u8, l) }
    }
}

/// Floats of packing scratch (`Args.pack_len`) a call with these sizes needs; `u32::MAX` when
/// that does not fit in `u32` (no such call can succeed).
#[cfg_attr(feature = "bindgen", wasm_bindgen)]
pub fn pack_floats(batch: u32, inputs: u32, outputs: u32) -> u32 {
    let shape = Shape::new(batch as usize, inputs as usize, outputs as usize);
    crate::pack::pack_len(shape).and_then(|n| u32::try_from(n).ok()).unwrap_or(u32::MAX)
}

/// 1 when the kernels were compiled with `simd128`.
#[cfg_attr(feature = "bindgen", wasm_bindgen)]
pub fn simd() -> u32 {
    crate::SIMD as u32
}

#[cfg_attr(feature = "bindgen", wasm_bindgen(js_name = forward))]
pub fn forward_export(args: Ptr) -> u32 {
    run(args, Export::Forward)
}

#[cfg_attr(feature = "bindgen", wasm_bindgen(js_name = objective))]
pub fn objective_export(args: Ptr) -> u32 {
    run(args, Export::Objective)
}

#[cfg_attr(feature = "bindgen", wasm_bindgen(js_name = gradients))]
pub fn gradients_export(args: Ptr) -> u32 {
    run(args, Export::Gradients)
}

#[cfg_attr(feature = "bindgen", wasm_bindgen(js_name = step))]
pub fn step_export(args: Ptr) -> u32 {
    run(args, Export::Step)
}

/// The four calls, each doing what the one before does and more.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Export {
    Forward,
    Objective,
    Gradients,
    Step,
}

fn run(args: Ptr, export: Export) -> u32 {
    match call(args, export, dispatch) {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

/// What a validated call returns: its outcome and, when an adaptation pass ran, the samples it
/// kept and its diversity term.
type Outcome = (Result<Totals, Error>, Option<(u32, f64)>);

/// Decode, validate, dispatch (`dispatch`, or the split drivers in the threads build); then the
/// results.
fn call(at: Ptr, export: Export, dispatch: impl FnOnce(Export, &Plan) -> Outcome) -> Result<(), Error> {
    let args: Args = memory::read(at)?;
    let plan = validate::validate(at, &args, export)?;
    let (result, adapted) = dispatch(export, &plan);
    if result == Err(Error::InvalidArgs) {
        // Status 5 writes nothing, results included (the drivers only get here with a block
        // `validate` let through, but keep the promise whatever they find).
        return Err(Error::InvalidArgs);
    }
    if let Some(ptr) = plan.results {
        // SAFETY: `validate` noted the results record as written, overlapping nothing, and the
        // slices of `dispatch` are gone.
        unsafe { memory::write(ptr, results(&result, adapted)) };
    }
    result.map(|_| ())
}

/// Runs the export's driver on the plan's slices.
fn dispatch(export: Export, plan: &Plan) -> Outcome {
    // SAFETY: `validate` returned the plan: every span is empty or in bounds, aligned and
    // non-null, and the written ones overlap nothing else. JavaScript is single-threaded and
    // blocked in this call, so no other reference exists while the slices live.
    let (x, targets, mut layer, mut work) = unsafe { plan.slices() };
    let input = Input { shape: plan.shape, x, targets, coefficients: plan.coefficients, labelled: plan.labelled };
    let result = match export {
        Export::Forward => step::forward_pass(&input, &layer, &mut work).map(|()| Totals::default()),
        Export::Objective => step::objective_pass(&input, &layer, &mut work),
        Export::Gradients => step::gradients_pass(&input, &layer, &mut work),
        // SAFETY: as above (the buffers and moments are spans of the same plan).
        Export::Step => match unsafe { plan.optimizer() } {
            Some(mut opt) => step::step(&input, &mut layer, &mut work, &mut opt),
            None => Err(Error::InvalidArgs),
        },
    };
    (result, work.adapt.map(|a| (a.kept, a.diversity_loss)))
}

/// The results record of a call that did not fail with status 5.
fn results(result: &Result<Totals, Error>, adapted: Option<(u32, f64)>) -> Results {
    match result {
        Ok(t) => {
            let (kept, diversity_loss) = adapted.unwrap_or((0, 0.0));
            Results { loss: t.loss, entropy: t.entropy, diversity_loss, kept, reserved: 0 }
        }
        Err(_) => Results { loss: f64::NAN, entropy: f64::NAN, diversity_loss: f64::NAN, kept: 0, reserved: 0 },
    }
}
