//! The portable flavour of the objective: `super::unit` over every element.

use super::{units_from, LossCoefficients, Sums, Totals, UnitConstants};

/// Writes `d = σ(z)`, `δ` into `delta`, `H` into `unit_entropy` and the per-unit loss into
/// `unit_loss` when given; returns the sums. Lengths as `super::check` requires; `targets` is
/// ignored when `αC = 0`.
pub fn objective(
    z: &[f32],
    d: &mut [f32],
    targets: Option<&[f32]>,
    coefficients: &LossCoefficients,
    delta: Option<&mut [f32]>,
    unit_entropy: Option<&mut [f32]>,
    unit_loss: Option<&mut [f32]>,
) -> Totals {
    let c = UnitConstants::new(coefficients);
    let targets = if c.cross_entropy != 0.0 { targets } else { None };
    let mut sums = Sums::default();
    units_from(0, z, d, targets, &c, delta, unit_entropy, unit_loss, &mut sums);
    sums.totals(coefficients)
}
