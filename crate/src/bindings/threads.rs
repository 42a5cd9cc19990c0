//! The threads module's exports (cargo feature `threads`, built by scripts/build-wasm.sh against
//! an imported shared memory). No wasm-bindgen: its glue would only instantiate the module, and
//! its thread support allocates on every thread; here TypeScript instantiates the module itself
//! (ts/threads/), once on the calling thread and once in each worker, and only the calling
//! thread allocates.
//!
//! The calls of `super` under their usual names, for work below the size that pays for threads,
//! and:
//!
//! | export | signature | what |
//! |---|---|---|
//! | `control_floats` | `() -> u32` | floats of a control block (`crate::parallel::Control`) |
//! | `threaded` | `(args, call, control, ticket, helpers) -> u32` | call `call` (0 forward, 1 objective, 2 gradients, 3 step) split over the caller and up to `helpers` helpers; status as the calls |
//! | `work` | `(control, ticket, budget) -> u32` | a helper takes part in call `ticket`; returns the chunks it ran |
//! | `abandon` | `(control)` | a helper failed (its worker caught a trap): the caller stops waiting |
//!
//! Each instance has its own stack: the module exports `__stack_pointer`, which a worker sets
//! to the top of a stack region the caller allocated for it before it calls anything.

use super::memory::memory_bytes;
use super::{call, Export, Outcome};
use crate::abi::Ptr;
use crate::objective::Totals;
use crate::parallel::{self, split, Control, Team};
use crate::status::Error;
use crate::step::Input;

#[export_name = "allocate"]
pub extern "C" fn allocate_export(n_floats: u32) -> u32 {
    super::allocate(n_floats)
}

#[export_name = "release"]
pub extern "C" fn release_export(ptr: u32, n_floats: u32) {
    super::release(ptr, n_floats)
}

#[export_name = "pack_floats"]
pub extern "C" fn pack_floats_export(batch: u32, inputs: u32, outputs: u32) -> u32 {
    super::pack_floats(batch, inputs, outputs)
}

#[export_name = "simd"]
pub extern "C" fn simd_export() -> u32 {
    super::simd()
}

#[export_name = "forward"]
pub extern "C" fn forward_c(args: Ptr) -> u32 {
    super::forward_export(args)
}

#[export_name = "objective"]
pub extern "C" fn objective_c(args: Ptr) -> u32 {
    super::objective_export(args)
}

#[export_name = "gradients"]
pub extern "C" fn gradients_c(args: Ptr) -> u32 {
    super::gradients_export(args)
}

#[export_name = "step"]
pub extern "C" fn step_c(args: Ptr) -> u32 {
    super::step_export(args)
}

#[export_name = "control_floats"]
pub extern "C" fn control_floats() -> u32 {
    parallel::control_floats() as u32
}

/// The control block at `at`: non-zero, aligned and inside memory; else `None`.
fn control<'a>(at: u32) -> Option<&'a Control> {
    let size = core::mem::size_of::<Control>() as u64;
    if at == 0 || !(at as usize).is_multiple_of(core::mem::align_of::<Control>()) || at as u64 + size > memory_bytes() {
        return None;
    }
    // SAFETY: in bounds and aligned; every field is an atomic, shared with the other threads
    // only through atomic operations.
    Some(unsafe { &*(at as usize as *const Control) })
}

#[export_name = "threaded"]
pub extern "C" fn threaded(args: Ptr, which: u32, at: u32, ticket: u32, helpers: u32) -> u32 {
    let export = match which {
        0 => Export::Forward,
        1 => Export::Objective,
        2 => Export::Gradients,
        3 => Export::Step,
        _ => return Error::InvalidArgs.code(),
    };
    let Some(ctrl) = control(at) else {
        return Error::InvalidArgs.code();
    };
    if ticket == 0 {
        return Error::InvalidArgs.code();
    }
    let mut team = Team::open(ctrl, ticket, helpers);
    match call(args, export, |e, plan| dispatch_split(e, plan, &mut team)) {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

#[export_name = "work"]
pub extern "C" fn work(at: u32, ticket: u32, budget: u32) -> u32 {
    match control(at) {
        // SAFETY: callers publish jobs on this block only through `Team` (the `threaded` export).
        Some(ctrl) => unsafe { parallel::work(ctrl, ticket, budget) },
        None => 0,
    }
}

#[export_name = "abandon"]
pub extern "C" fn abandon(at: u32) {
    if let Some(ctrl) = control(at) {
        parallel::abandon(ctrl);
    }
}

/// As `super::dispatch`, with the drivers split into phases over `team`.
fn dispatch_split(export: Export, plan: &super::validate::Plan, team: &mut Team) -> Outcome {
    // SAFETY: as in `super::dispatch`; the helpers of `team` touch only the disjoint parts of
    // these slices that the split drivers hand them, while this thread waits for them.
    let (x, targets, mut layer, mut work) = unsafe { plan.slices() };
    let input = Input { shape: plan.shape, x, targets, coefficients: plan.coefficients, labelled: plan.labelled };
    let result = match export {
        Export::Forward => split::forward_pass(team, &input, &layer, &mut work).map(|()| Totals::default()),
        Export::Objective => split::objective_pass(team, &input, &layer, &mut work),
        Export::Gradients => split::gradients_pass(team, &input, &layer, &mut work),
        // SAFETY: as above.
        Export::Step => match unsafe { plan.optimizer() } {
            Some(mut opt) => split::step(team, &input, &mut layer, &mut work, &mut opt),
            None => Err(Error::InvalidArgs),
        },
    };
    // A helper that failed left its chunks undone: nothing this call computed can be trusted.
    let result = if team.failed() { Err(Error::InvalidArgs) } else { result };
    (result, work.adapt.map(|a| (a.kept, a.diversity_loss)))
}
