//! The per-unit objective, its derivative `δ = ∂loss/∂z`, and the batch sums.
//!
//! For each unit (one batch row, one output) with `z`, `σ = d`, target `y`:
//!
//! * entropy in bits `H = (log1p(e) + a·e/(1+e))/ln2` (`a = |z|`, `e = exp(-a)`),
//! * cross-entropy in bits `CE = (softplus(z) - y·z)/ln2`, `softplus(z) = max(z,0) + log1p(e)`,
//! * `loss = αE·H + αC·CE`,
//! * `δ = scale·(αE·(-(1/ln2)·z·σ(1-σ)) + αC·(σ - y)/ln2)`, computed as
//!   `(scale/ln2)·(αC·(σ - y) - αE·(z·σ(1-σ)))` with `σ(1-σ) = e/(1+e)²`.
//!
//! Sums are accumulated in `f64`. `y` is read only when `αC ≠ 0`.
//!
//! Flavours: `scalar.rs` (this file's `unit` over every element), `simd128.rs` (four units at a
//! time, `unit` for the tail); `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::math::{cap_bit, log1p_unit, terms, INV_LN_2};

/// The loss's coefficients (the args block's `entropy_weight`, `cross_entropy_weight`, `scale`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossCoefficients {
    /// αE
    pub entropy: f32,
    /// αC
    pub cross_entropy: f32,
    /// `1/batch` for a mean, 1 for a sum.
    pub scale: f32,
}

/// What `objective` adds up.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    /// `scale·Σ loss`
    pub loss: f64,
    /// `scale·Σ H` (bits)
    pub entropy: f64,
    /// A target was `< 0` or `> 1`, or NaN (which also shows up as a NaN loss).
    pub targets_out_of_range: bool,
}

/// The per-unit formulas' constants, derived once per call from the loss's coefficients.
#[derive(Clone, Copy, Debug)]
pub struct UnitConstants {
    /// αE
    pub entropy: f32,
    /// αC
    pub cross_entropy: f32,
    /// αC/ln2, the weight of the cross-entropy in nats: αC = 0 gives 0 even where the
    /// cross-entropy itself would overflow (|z| > 2e38).
    pub cross_entropy_per_nat: f32,
    /// scale/ln2, the factor of δ.
    pub delta_scale: f32,
}

impl UnitConstants {
    pub fn new(c: &LossCoefficients) -> UnitConstants {
        UnitConstants {
            entropy: c.entropy,
            cross_entropy: c.cross_entropy,
            cross_entropy_per_nat: c.cross_entropy * INV_LN_2,
            delta_scale: c.scale * INV_LN_2,
        }
    }
}

/// One unit: `(σ(z), H in bits, loss, δ)`.
#[inline(always)]
pub fn unit(z: f32, y: f32, c: &UnitConstants) -> (f32, f32, f32, f32) {
    let t = terms(z);
    let d = if z >= 0.0 { t.inv } else { t.ei };
    let l1p = log1p_unit(t.e);
    let h = cap_bit((l1p + t.a * t.ei) * INV_LN_2);
    let zpos = if z > 0.0 { z } else { 0.0 };
    let ce = zpos + l1p - y * z;
    let loss = c.entropy * h + c.cross_entropy_per_nat * ce;
    let g = c.cross_entropy * (d - y) - c.entropy * (z * (t.ei * t.inv));
    (d, h, loss, c.delta_scale * g)
}

/// What the objective writes per unit besides `d`, where given: `δ`, the entropy `H` in bits,
/// and the loss (not multiplied by `scale`).
#[derive(Default)]
pub struct UnitOutputs<'a> {
    pub delta: Option<&'a mut [f32]>,
    pub entropy: Option<&'a mut [f32]>,
    pub loss: Option<&'a mut [f32]>,
}

impl UnitOutputs<'_> {
    /// The same outputs, borrowed again (for a call that must not consume them).
    pub fn reborrow(&mut self) -> UnitOutputs<'_> {
        UnitOutputs {
            delta: self.delta.as_deref_mut(),
            entropy: self.entropy.as_deref_mut(),
            loss: self.loss.as_deref_mut(),
        }
    }
}

/// The objective's contract: `d`, the outputs given and the targets it reads (when given) are
/// as long as `z`.
pub fn check(z: &[f32], d: &[f32], targets: Option<&[f32]>, out: &UnitOutputs) {
    let n = z.len();
    assert!(d.len() == n && targets.is_none_or(|y| y.len() == n));
    for o in [&out.delta, &out.entropy, &out.loss].into_iter().flatten() {
        assert!(o.len() == n);
    }
}

/// Running sums of the objective (unscaled).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sums {
    pub loss: f64,
    pub entropy: f64,
    pub out_of_range: bool,
}

impl Sums {
    pub fn totals(self, c: &LossCoefficients) -> Totals {
        let s = c.scale as f64;
        Totals { loss: s * self.loss, entropy: s * self.entropy, targets_out_of_range: self.out_of_range }
    }
}

/// Units `from..` one at a time (`unit`), added to `sums`: the scalar flavour (from 0), and the
/// SIMD flavour's tail. `targets` is `None` when `αC = 0`; lengths as `check` requires.
#[inline(always)]
pub fn units_from(
    from: usize,
    z: &[f32],
    d: &mut [f32],
    targets: Option<&[f32]>,
    c: &UnitConstants,
    out: &mut UnitOutputs,
    sums: &mut Sums,
) {
    for i in from..z.len() {
        let y = match targets {
            Some(t) => {
                let y = t[i];
                sums.out_of_range |= !(0.0..=1.0).contains(&y);
                y
            }
            None => 0.0,
        };
        let (dv, h, l, dl) = unit(z[i], y, c);
        d[i] = dv;
        sums.loss += l as f64;
        sums.entropy += h as f64;
        if let Some(v) = out.delta.as_deref_mut() {
            v[i] = dl;
        }
        if let Some(v) = out.entropy.as_deref_mut() {
            v[i] = h;
        }
        if let Some(v) = out.loss.as_deref_mut() {
            v[i] = l;
        }
    }
}
