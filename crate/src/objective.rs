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

use crate::math::{cap_bit, log1p_unit, terms, INV_LN_2};

/// The objective's coefficients (args slots 15–17).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
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
    /// A target was `< 0` or `> 1` (NaN targets show up as a NaN loss instead).
    pub targets_out_of_range: bool,
}

/// The constants of the per-unit formulas, derived once per call.
#[derive(Clone, Copy, Debug)]
pub struct Coef {
    /// αE
    pub ae: f32,
    /// αC
    pub ac: f32,
    /// αC/ln2: the cross-entropy term is weighted in nats, so αC = 0 gives 0 even where the
    /// cross-entropy itself would overflow (|z| > 2e38).
    pub kc: f32,
    /// scale/ln2
    pub k: f32,
}

impl Coef {
    pub fn new(w: &Weights) -> Coef {
        Coef { ae: w.entropy, ac: w.cross_entropy, kc: w.cross_entropy * INV_LN_2, k: w.scale * INV_LN_2 }
    }
}

/// One unit: `(σ(z), H in bits, loss, δ)`.
#[inline(always)]
pub fn unit(z: f32, y: f32, c: &Coef) -> (f32, f32, f32, f32) {
    let t = terms(z);
    let d = if z >= 0.0 { t.inv } else { t.ei };
    let l1p = log1p_unit(t.e);
    let h = cap_bit((l1p + t.a * t.ei) * INV_LN_2);
    let zpos = if z > 0.0 { z } else { 0.0 };
    let ce = zpos + l1p - y * z;
    let loss = c.ae * h + c.kc * ce;
    let g = c.ac * (d - y) - c.ae * (z * (t.ei * t.inv));
    (d, h, loss, c.k * g)
}

/// Evaluates the objective over `z` (and `targets` when `αC ≠ 0`), all `batch × outputs`.
/// Writes `d = σ(z)` (the same bits as `forward::sigmoid`), and `δ` into `delta`, `H` into
/// `units` and the unweighted-by-`scale` per-unit loss into `unit_loss` when given: one
/// evaluation of `exp(-|z|)` serves them all. Panics if `αC ≠ 0` and `targets` is `None`, or
/// on mismatched lengths.
pub fn objective(
    z: &[f32],
    d: &mut [f32],
    targets: Option<&[f32]>,
    weights: &Weights,
    delta: Option<&mut [f32]>,
    units: Option<&mut [f32]>,
    unit_loss: Option<&mut [f32]>,
) -> Totals {
    let n = z.len();
    assert!(d.len() == n);
    let targets = if weights.cross_entropy != 0.0 {
        let y = targets.expect("cross-entropy needs targets");
        assert!(y.len() == n);
        Some(y)
    } else {
        None
    };
    for o in [&delta, &units, &unit_loss].into_iter().flatten() {
        assert!(o.len() == n);
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return crate::simd::objective::objective(z, d, targets, weights, delta, units, unit_loss);
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    scalar::objective(z, d, targets, weights, delta, units, unit_loss)
}

pub mod scalar {
    use super::*;

    /// Same contract as [`objective`](super::objective), lengths already checked; `targets`
    /// is ignored when `αC = 0`.
    pub fn objective(
        z: &[f32],
        d: &mut [f32],
        targets: Option<&[f32]>,
        weights: &Weights,
        mut delta: Option<&mut [f32]>,
        mut units: Option<&mut [f32]>,
        mut unit_loss: Option<&mut [f32]>,
    ) -> Totals {
        let c = Coef::new(weights);
        let targets = if c.ac != 0.0 { targets } else { None };
        let (mut loss, mut ent) = (0.0f64, 0.0f64);
        let mut out_of_range = false;
        for i in 0..z.len() {
            let y = match targets {
                Some(t) => {
                    let y = t[i];
                    out_of_range |= !(0.0..=1.0).contains(&y);
                    y
                }
                None => 0.0,
            };
            let (dv, h, l, dl) = unit(z[i], y, &c);
            d[i] = dv;
            loss += l as f64;
            ent += h as f64;
            if let Some(v) = delta.as_deref_mut() {
                v[i] = dl;
            }
            if let Some(v) = units.as_deref_mut() {
                v[i] = h;
            }
            if let Some(v) = unit_loss.as_deref_mut() {
                v[i] = l;
            }
        }
        let s = weights.scale as f64;
        Totals { loss: s * loss, entropy: s * ent, targets_out_of_range: out_of_range }
    }
}
