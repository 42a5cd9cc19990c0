//! The portable flavour of the objective: `super::unit` over every element.

use super::{units_from, LossCoefficients, Sums, Totals, UnitConstants, UnitOutputs};

/// Writes `d = σ(z)` and the outputs given; returns the sums. Lengths as `super::check`
/// requires; the targets `y` are ignored when `αC = 0`.
pub fn objective(z: &[f32], d: &mut [f32], y: Option<&[f32]>, c: &LossCoefficients, mut out: UnitOutputs) -> Totals {
    let k = UnitConstants::new(c);
    let targets = if k.cross_entropy != 0.0 { y } else { None };
    let mut sums = Sums::default();
    units_from(0, z, d, targets, &k, &mut out, &mut sums);
    sums.totals(c)
}
