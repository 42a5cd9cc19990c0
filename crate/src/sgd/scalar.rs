//! The portable flavour of the SGD update: `super::update_elements` over every element.

use super::update_elements;
use crate::rule::Rule;

/// Updates `theta` by a non-frozen SGD rule; `buf` is `Some` exactly when the rule uses a
/// buffer (contract: `super::check`). `true` when every value written (or that would be, with
/// `write = false`) is finite.
pub fn sgd_update(theta: &mut [f32], grad: &[f32], buf: Option<&mut [f32]>, rule: &Rule, write: bool) -> bool {
    update_elements(theta, grad, buf, rule, write)
}
