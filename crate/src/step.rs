//! The fused drivers behind the wasm exports: `forward`, `entropy`, `gradients` and `step`
//! (forward + objective + gradients + update in one call).
//!
//! They read the args block's meaning from plain Rust values (`bindings` does the decoding)
//! and never allocate. Failure detection is cheap on the common path: the objective's
//! `f64` sums become non-finite whenever any `x` is, so `x` and `targets` are scanned only
//! when a sum is non-finite or a target was out of range (`status::classify`). `step` checks
//! before it writes: it first runs every update with `write = false`, and stores parameters,
//! momentum buffers, Adam's moments, `buf_ready` and Adam's step counts only when all of them
//! would be finite. With `max_grad_norm > 0` the gradients are clipped first (`clip`).

use crate::adam::adam_update;
use crate::adapt::{adapt, AdaptWork};
use crate::clip;
use crate::forward::{forward, sum_weights};
use crate::gradients::{bias_gradient, weight_gradient};
use crate::objective::{objective, Totals, Weights};
use crate::sgd::{sgd_update, Rule, RuleKind};
use crate::shape::Shape;
use crate::status::{all_finite, classify, Error};

/// The parameters: `w`, `g` (`outputs × inputs`) and `b` (`outputs`). The layer uses `w + g`.
pub struct Layer<'a> {
    pub w: &'a mut [f32],
    pub g: &'a mut [f32],
    pub b: &'a mut [f32],
}

/// Scratch and outputs. `delta`, `dw`, `db` are required by `gradients` and `step`; `units`
/// and `unit_loss` are written when present. With `adapt`, `gradients` and `step` run the
/// test-time adaptation pass (`adapt.rs`) between the objective and the gradients; it needs
/// `units` and `unit_loss`.
pub struct Work<'a> {
    pub wsum: &'a mut [f32],
    pub z: &'a mut [f32],
    pub d: &'a mut [f32],
    pub delta: Option<&'a mut [f32]>,
    pub units: Option<&'a mut [f32]>,
    pub unit_loss: Option<&'a mut [f32]>,
    pub dw: Option<&'a mut [f32]>,
    pub db: Option<&'a mut [f32]>,
    pub adapt: Option<AdaptWork<'a>>,
}

/// The three rules (w, g, b), their buffers, and the clipping threshold.
#[derive(Default)]
pub struct Optimizer<'a> {
    pub rules: [Rule; 3],
    /// SGD's momentum buffers (required where `rule.uses_buffer()`).
    pub bufs: [Option<&'a mut [f32]>; 3],
    /// Adam's first and second moments (required for an Adam rule).
    pub exp_avg: [Option<&'a mut [f32]>; 3],
    pub exp_avg_sq: [Option<&'a mut [f32]>; 3],
    /// Gradient-norm clipping threshold; 0 turns clipping off.
    pub max_grad_norm: f32,
}

fn len_ok(v: &Option<&mut [f32]>, n: usize) -> bool {
    v.as_ref().is_none_or(|s| s.len() == n)
}

fn check_lengths(shape: Shape, x: &[f32], layer: &Layer, work: &Work) -> Result<(), Error> {
    let (xn, wn, zn, o) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
    let ok = x.len() == xn
        && layer.w.len() == wn
        && layer.g.len() == wn
        && layer.b.len() == o
        && work.wsum.len() == wn
        && work.z.len() == zn
        && work.d.len() == zn
        && len_ok(&work.delta, zn)
        && len_ok(&work.units, zn)
        && len_ok(&work.unit_loss, zn)
        && len_ok(&work.dw, wn)
        && len_ok(&work.db, o)
        && work
            .adapt
            .as_ref()
            .is_none_or(|a| a.weights.len() == shape.batch && a.positive.len() == o && a.mean.len() == o);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgs)
    }
}

/// `wsum = w + g`, `z = x·wsumᵀ + b`, `d = σ(z)`. Fails with 1 (non-finite `x`) or 4 when `z`
/// is not finite.
pub fn forward_pass(shape: Shape, x: &[f32], layer: &Layer, work: &mut Work) -> Result<(), Error> {
    check_lengths(shape, x, layer, work)?;
    sum_weights(layer.w, layer.g, work.wsum);
    forward(x, work.wsum, layer.b, work.z, work.d, shape);
    if all_finite(work.z) {
        Ok(())
    } else {
        Err(classify(x, None))
    }
}

/// Forward pass and objective; writes `delta` (when given), `units`, `unit_loss`.
pub fn entropy_pass(
    shape: Shape,
    x: &[f32],
    targets: Option<&[f32]>,
    weights: &Weights,
    layer: &Layer,
    work: &mut Work,
) -> Result<Totals, Error> {
    check_lengths(shape, x, layer, work)?;
    let targets = if weights.cross_entropy != 0.0 {
        match targets {
            Some(y) if y.len() == shape.z_len() => Some(y),
            _ => return Err(Error::InvalidArgs),
        }
    } else {
        None
    };
    sum_weights(layer.w, layer.g, work.wsum);
    forward(x, work.wsum, layer.b, work.z, work.d, shape);
    let totals = objective(
        work.z,
        work.d,
        targets,
        weights,
        work.delta.as_deref_mut(),
        work.units.as_deref_mut(),
        work.unit_loss.as_deref_mut(),
    );
    if totals.targets_out_of_range || !totals.loss.is_finite() || !totals.entropy.is_finite() {
        return Err(classify(x, targets));
    }
    Ok(totals)
}

/// Forward pass, objective, the adaptation pass when `work.adapt` is set (its loss replaces
/// `totals.loss`), `dw` (= `dg`) and `db`. Fails with 4 when the loss or a gradient is not
/// finite.
pub fn gradients_pass(
    shape: Shape,
    x: &[f32],
    targets: Option<&[f32]>,
    weights: &Weights,
    layer: &Layer,
    work: &mut Work,
) -> Result<Totals, Error> {
    if work.delta.is_none() || work.dw.is_none() || work.db.is_none() {
        return Err(Error::InvalidArgs);
    }
    if work.adapt.is_some() && (work.units.is_none() || work.unit_loss.is_none()) {
        return Err(Error::InvalidArgs);
    }
    let mut totals = entropy_pass(shape, x, targets, weights, layer, work)?;
    if let (Some(a), Some(units), Some(unit_loss), Some(delta)) =
        (work.adapt.as_mut(), work.units.as_deref(), work.unit_loss.as_deref(), work.delta.as_deref_mut())
    {
        totals.loss = adapt(shape, work.z, work.d, units, unit_loss, delta, weights.scale, a);
        if !totals.loss.is_finite() {
            return Err(Error::NonFiniteResult);
        }
    }
    let (Some(delta), Some(dw), Some(db)) = (work.delta.as_deref(), work.dw.as_deref_mut(), work.db.as_deref_mut())
    else {
        return Err(Error::InvalidArgs);
    };
    weight_gradient(delta, x, dw, shape);
    bias_gradient(delta, db, shape);
    if !(all_finite(dw) && all_finite(db)) {
        return Err(Error::NonFiniteResult);
    }
    Ok(totals)
}

/// One training step: `gradients_pass`, optional clipping, then every rule's update, checked
/// before written. On success the rules that wrote a momentum buffer have `buf_ready = true`
/// and the Adam rules' `step` has advanced by one. On failure `layer`, the buffers and the rules
/// are unchanged (scratch in `work`, `dw` and `db` included, may have changed).
pub fn step(
    shape: Shape,
    x: &[f32],
    targets: Option<&[f32]>,
    weights: &Weights,
    layer: &mut Layer,
    work: &mut Work,
    opt: &mut Optimizer,
) -> Result<Totals, Error> {
    let lens = [shape.w_len(), shape.w_len(), shape.outputs];
    let has = |v: &Option<&mut [f32]>, n: usize| v.as_ref().is_some_and(|b| b.len() == n);
    for (k, (rule, n)) in opt.rules.iter().zip(lens).enumerate() {
        if rule.uses_buffer() && !has(&opt.bufs[k], n) {
            return Err(Error::InvalidArgs);
        }
        if rule.kind == RuleKind::Adam && !(has(&opt.exp_avg[k], n) && has(&opt.exp_avg_sq[k], n)) {
            return Err(Error::InvalidArgs);
        }
    }
    if !(opt.max_grad_norm >= 0.0 && opt.max_grad_norm.is_finite()) {
        return Err(Error::InvalidArgs);
    }
    let totals = gradients_pass(shape, x, targets, weights, layer, work)?;
    let (Some(dw), Some(db)) = (work.dw.as_deref_mut(), work.db.as_deref_mut()) else {
        return Err(Error::InvalidArgs);
    };
    let updated = opt.rules.map(|r| r.kind != RuleKind::Frozen);
    if opt.max_grad_norm > 0.0 {
        let shared = updated[0] as u32 + updated[1] as u32;
        let mut sq = 0.0;
        if shared > 0 {
            sq += clip::sum_squares(dw) * shared as f64;
        }
        if updated[2] {
            sq += clip::sum_squares(db);
        }
        let Some(coef) = clip::coefficient(sq.sqrt(), opt.max_grad_norm) else {
            return Err(Error::NonFiniteResult);
        };
        if coef < 1.0 {
            clip::scale(dw, coef);
            clip::scale(db, coef);
        }
    }
    let (dw, db) = (&*dw, &*db);
    let Optimizer { rules, bufs, exp_avg, exp_avg_sq, .. } = opt;
    let grads: [&[f32]; 3] = [dw, dw, db];
    let [tw, tg, tb] = [&mut *layer.w, &mut *layer.g, &mut *layer.b];
    let thetas: [&mut [f32]; 3] = [tw, tg, tb];
    for write in [false, true] {
        let mut ok = true;
        for k in 0..3 {
            ok &=
                update(&mut *thetas[k], grads[k], &mut bufs[k], &mut exp_avg[k], &mut exp_avg_sq[k], &rules[k], write);
        }
        if !ok {
            // Only the `write = false` pass can get here: it computes the same values.
            return Err(Error::NonFiniteResult);
        }
    }
    for rule in rules.iter_mut() {
        if rule.uses_buffer() {
            rule.buf_ready = true;
        }
        if rule.kind == RuleKind::Adam {
            rule.step = rule.step.saturating_add(1);
        }
    }
    Ok(totals)
}

/// One parameter's update by its rule's kind (buffers were checked by `step`).
fn update(
    theta: &mut [f32],
    grad: &[f32],
    buf: &mut Option<&mut [f32]>,
    m: &mut Option<&mut [f32]>,
    v: &mut Option<&mut [f32]>,
    rule: &Rule,
    write: bool,
) -> bool {
    match (rule.kind, m.as_deref_mut(), v.as_deref_mut()) {
        (RuleKind::Frozen, _, _) => true,
        (RuleKind::Sgd, _, _) => sgd_update(theta, grad, buf.as_deref_mut(), rule, write),
        (RuleKind::Adam, Some(m), Some(v)) => adam_update(theta, grad, m, v, rule, write),
        (RuleKind::Adam, _, _) => false,
    }
}

/// Decodes a rule record's kind (slot 0): 0 frozen, 1 SGD, 2 Adam (decoupled decay).
pub fn rule_kind(code: u32) -> Result<RuleKind, Error> {
    match code {
        0 => Ok(RuleKind::Frozen),
        1 => Ok(RuleKind::Sgd),
        2 => Ok(RuleKind::Adam),
        _ => Err(Error::InvalidArgs),
    }
}
