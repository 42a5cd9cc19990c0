//! The portable flavour of the Adam update: `super::update_elements` over every element.

use super::{update_elements, Scalars};

/// Updates `theta`, `m` (exp_avg) and `v` (exp_avg_sq) by an Adam rule's scalars (contract:
/// `super::check`). `true` when every value written (or that would be, with `write = false`) is
/// finite.
pub fn adam_update(theta: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32], s: &Scalars, write: bool) -> bool {
    update_elements(theta, grad, m, v, s, write)
}
