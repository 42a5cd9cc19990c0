//! Test-time adaptation: a pass between the objective and the weight gradient that turns the
//! per-unit objective into the adaptation loss of TENT/EATA/SAR and rescales `δ` in place.
//!
//! Per sample `n`, with per-unit entropies `H[n,o]` (bits) and per-unit losses `ℓ[n,o]` from
//! the objective:
//!
//! ```text
//! Hₙ = Σₒ H[n,o]                                    sample entropy (bits)
//! keepₙ = !filter || Hₙ ≤ E0                         EATA's filter
//! wₙ = keepₙ ? (eata ? exp(E0 − Hₙ) : 1) : 0         EATA's weight 1/exp(Hₙ − E0), held constant
//! K = Σₙ keepₙ                                       kept samples
//! mₒ = (1/B) Σₙ D[n,o]                               this batch's mean prediction
//! p̄ₒ = β·p̄ₒ⁻ + (1 − β)·mₒ                            the running marginal (p̄⁻: before this batch)
//! loss = s′·Σₙ wₙ·Σₒ ℓ[n,o]  +  λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ)
//! KL(π ‖ p) = π·log2(π/p) + (1 − π)·log2((1 − π)/(1 − p))     Bernoulli KL in bits
//! ```
//!
//! with `s′ = 1/K` for the mean reduction (EATA averages over the kept samples; 0 when K = 0)
//! and `s′ = 1` for the sum. The diversity term pulls the running marginal of each output
//! towards its prior `πₒ` (the training label frequency): `λ·Σₒ KL(πₒ ‖ p̄ₒ)` per batch under
//! the mean and `B` times that under the sum, so its weight against the rest does not depend
//! on the reduction. Its derivative holds the past `p̄⁻` constant, so it reaches this batch
//! through the `(1 − β)` share:
//!
//! ```text
//! ∂/∂z[n,o] (λ·B·scale·KL(πₒ ‖ p̄ₒ)) = λ·scale·(1 − β)·(p̄ₒ − πₒ)/(p̄ₒ·(1 − p̄ₒ)·ln 2)·D(1−D)[n,o]
//! ```
//!
//! `p̄` is clipped to `[P_MIN, 1 − P_MIN]` inside the term and its slope (a marginal of exactly
//! 0 or 1 would otherwise give ∞). The objective's `δ` already carries `scale`, so
//! `δ ← wₙ·(s′/scale)·δ + (diversity derivative)`.
//!
//! The metrics come out of the same pass: the sample weights `wₙ` (0 for a skipped sample),
//! `mₒ`, the fraction of samples with `D[n,o] > 0.5` per output (a collapse detector), `K`,
//! the running marginal `p̄ₒ` (with the diversity term) and the term's value.
//!
//! Scalar only: the pass is `O(batch·outputs)` next to the `O(batch·inputs·outputs)` GEMMs,
//! and half of it is per sample (`exp`, a division), so a SIMD body would not show.

use crate::abi::AdaptRecord;
use crate::math::terms;
use crate::shape::Shape;

/// `p̄` is kept in `[P_MIN, 1 − P_MIN]` inside the diversity term.
pub const P_MIN: f64 = 1e-6;

const INV_LN_2_F64: f64 = core::f64::consts::LOG2_E;

crate::abi::codes! {
    /// Bits of the adapt record's `flags`.
    pub enum AdaptFlag {
        /// Skip samples whose entropy exceeds `max_entropy` (EATA's filter).
        Filter = 1,
        /// Weigh samples by `exp(max_entropy − Hₙ)` (EATA).
        Eata = 2,
        /// Average over the kept samples (the mean reduction); otherwise add them up.
        Mean = 4,
    }
}

/// What the pass does: an `AdaptRecord`'s settings, decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adapt {
    /// Skip samples whose entropy exceeds `max_entropy`.
    pub filter: bool,
    /// Weigh samples by `exp(max_entropy − Hₙ)` (EATA).
    pub eata: bool,
    /// Average over the kept samples (the mean reduction); otherwise add them up.
    pub mean: bool,
    /// `E0`, bits.
    pub max_entropy: f32,
    /// `λ` of the diversity term (0: none).
    pub diversity: f32,
    /// `β` of the running marginal, in [0, 1).
    pub marginal_momentum: f32,
}

impl Adapt {
    /// The record's settings; `None` for unknown flag bits, a non-finite `E0` or `λ`, or a
    /// `β` outside [0, 1).
    pub fn decode(r: &AdaptRecord) -> Option<Adapt> {
        let known = AdaptFlag::Filter.code() | AdaptFlag::Eata.code() | AdaptFlag::Mean.code();
        if r.flags & !known != 0 || !r.max_entropy.is_finite() || !r.diversity.is_finite() {
            return None;
        }
        if !(r.marginal_momentum >= 0.0 && r.marginal_momentum < 1.0) {
            return None;
        }
        let has = |f: AdaptFlag| r.flags & f.code() != 0;
        Some(Adapt {
            filter: has(AdaptFlag::Filter),
            eata: has(AdaptFlag::Eata),
            mean: has(AdaptFlag::Mean),
            max_entropy: r.max_entropy,
            diversity: r.diversity,
            marginal_momentum: r.marginal_momentum,
        })
    }
}

/// The pass's outputs and settings: `sample_weights` is `batch` long, `positive` and `mean`
/// `outputs` long, and with the diversity term `prior`, `marginal` and `running` too (empty
/// without it); `kept` and `diversity_loss` are written by [`adapt`].
pub struct AdaptWork<'a> {
    pub cfg: Adapt,
    /// `wₙ`, 0 for a skipped sample.
    pub sample_weights: &'a mut [f32],
    /// Fraction of the batch with `D > 0.5`, per output.
    pub positive: &'a mut [f32],
    /// `mₒ`, this batch's mean prediction per output.
    pub mean: &'a mut [f32],
    /// `πₒ`, the diversity term's prior.
    pub prior: &'a [f32],
    /// `p̄⁻ₒ`, the running marginal before this batch.
    pub marginal: &'a [f32],
    /// Written: `p̄ₒ`, the running marginal with this batch.
    pub running: &'a mut [f32],
    /// `K`, samples kept.
    pub kept: u32,
    /// `λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ)`, the diversity term's part of the loss.
    pub diversity_loss: f64,
}

/// `KL(Bern(π) ‖ Bern(p))` in bits (`0·log 0 = 0`), for `p` inside (0, 1).
pub fn bernoulli_kl(pi: f64, p: f64) -> f64 {
    let t = |a: f64, b: f64| if a > 0.0 { a * (a / b).log2() } else { 0.0 };
    t(pi, p) + t(1.0 - pi, 1.0 - p)
}

/// Runs the pass over one batch: reads `z`, `d`, `unit_entropy`, `unit_loss`, rescales
/// `delta` in place, fills `work`, and returns the adaptation loss. `scale` is the objective's
/// (`1/batch` or 1). Panics on mismatched lengths. The loss is non-finite exactly when an
/// input was (or a weight overflowed); the caller checks it and the gradients.
#[allow(clippy::too_many_arguments)] // flat slices, as the other kernels and the JS mirror take them
pub fn adapt(
    shape: Shape,
    z: &[f32],
    d: &[f32],
    unit_entropy: &[f32],
    unit_loss: &[f32],
    delta: &mut [f32],
    scale: f32,
    work: &mut AdaptWork,
) -> f64 {
    let (batch, outputs) = (shape.batch, shape.outputs);
    let n = shape.z_len();
    assert!(z.len() == n && d.len() == n && unit_entropy.len() == n && unit_loss.len() == n && delta.len() == n);
    assert!(work.sample_weights.len() == batch && work.positive.len() == outputs && work.mean.len() == outputs);
    let lambda = work.cfg.diversity as f64;
    assert!(
        lambda == 0.0
            || (work.prior.len() == outputs && work.marginal.len() == outputs && work.running.len() == outputs)
    );
    let cfg = work.cfg;
    let e0 = cfg.max_entropy as f64;

    // Per sample: entropy, filter, weight, weighted loss.
    let (mut kept, mut weighted) = (0u32, 0.0f64);
    for s in 0..batch {
        let row = s * outputs..(s + 1) * outputs;
        let (mut h, mut l) = (0.0f64, 0.0f64);
        for k in row {
            h += unit_entropy[k] as f64;
            l += unit_loss[k] as f64;
        }
        let keep = !cfg.filter || h <= e0;
        let w = if !keep {
            0.0
        } else if cfg.eata {
            (e0 - h).exp() as f32
        } else {
            1.0
        };
        work.sample_weights[s] = w;
        kept += keep as u32;
        weighted += w as f64 * l;
    }
    let s_kept = match (cfg.mean, kept) {
        (true, 0) => 0.0,
        (true, k) => 1.0 / k as f64,
        (false, _) => 1.0,
    };
    // δ carries `scale`; it should carry s′: multiply by wₙ·s′/scale.
    let ratio = if scale != 0.0 { (s_kept / scale as f64) as f32 } else { 0.0 };

    // Per output: mean prediction, positive fraction, diversity; then δ down the column.
    let beta = cfg.marginal_momentum as f64;
    let inv_batch = if batch > 0 { 1.0 / batch as f64 } else { 0.0 };
    let mut diversity = 0.0f64;
    for o in 0..outputs {
        let (mut sum, mut pos) = (0.0f64, 0u32);
        for s in 0..batch {
            let dk = d[s * outputs + o];
            sum += dk as f64;
            pos += (dk > 0.5) as u32;
        }
        let p = sum * inv_batch;
        work.mean[o] = p as f32;
        work.positive[o] = (pos as f64 * inv_batch) as f32;
        let slope = if lambda != 0.0 && batch > 0 {
            let running = beta * work.marginal[o] as f64 + (1.0 - beta) * p;
            work.running[o] = running as f32;
            let (pi, pc) = (work.prior[o] as f64, running.clamp(P_MIN, 1.0 - P_MIN));
            diversity += bernoulli_kl(pi, pc);
            (lambda * scale as f64 * (1.0 - beta) * (pc - pi) / (pc * (1.0 - pc)) * INV_LN_2_F64) as f32
        } else {
            // An empty batch leaves the running marginal where it was (written all the same:
            // callers read `running` after every call).
            if lambda != 0.0 {
                work.running[o] = work.marginal[o];
            }
            0.0
        };
        for s in 0..batch {
            let k = s * outputs + o;
            let mut v = work.sample_weights[s] * ratio * delta[k];
            if slope != 0.0 {
                let t = terms(z[k]);
                v += slope * (t.ei * t.inv);
            }
            delta[k] = v;
        }
    }
    work.kept = kept;
    work.diversity_loss = lambda * batch as f64 * scale as f64 * diversity;
    s_kept * weighted + work.diversity_loss
}
