//! The fused drivers behind the wasm exports: `forward`, `entropy`, `gradients` and `step`
//! (forward + objective + gradients + update in one call).
//!
//! They read the args block's meaning from plain Rust values (`bindings` does the decoding)
//! and never allocate. Failure detection is cheap on the common path: the objective's
//! `f64` sums become non-finite whenever any `x` is, so `x` and `targets` are scanned only
//! when a sum is non-finite or a target was out of range (`status::classify`). `step` checks
//! before it writes: it first runs every update with `write = false`, and stores parameters,
//! momentum buffers and `buf_ready` only when all of them would be finite.

use crate::adapt::{adapt, AdaptWork};
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

/// The three rules (w, g, b) and their momentum buffers.
pub struct Optimizer<'a> {
    pub rules: [Rule; 3],
    pub bufs: [Option<&'a mut [f32]>; 3],
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

/// One training step: `gradients_pass`, then every rule's update, checked before written.
/// On success the rules that wrote a momentum buffer have `buf_ready = true`. On failure
/// `layer`, the buffers and the rules are unchanged (scratch in `work` may have changed).
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
    for ((rule, buf), n) in opt.rules.iter().zip(&opt.bufs).zip(lens) {
        if rule.uses_buffer() && buf.as_ref().is_none_or(|b| b.len() != n) {
            return Err(Error::InvalidArgs);
        }
    }
    let totals = gradients_pass(shape, x, targets, weights, layer, work)?;
    let (Some(dw), Some(db)) = (work.dw.as_deref(), work.db.as_deref()) else {
        return Err(Error::InvalidArgs);
    };
    let [bw, bg, bb] = &mut opt.bufs;
    let [rw, rg, rb] = &opt.rules;
    for write in [false, true] {
        let ok = sgd_update(layer.w, dw, bw.as_deref_mut(), rw, write)
            & sgd_update(layer.g, dw, bg.as_deref_mut(), rg, write)
            & sgd_update(layer.b, db, bb.as_deref_mut(), rb, write);
        if !ok {
            // Only the `write = false` pass can get here: it computes the same values.
            return Err(Error::NonFiniteResult);
        }
    }
    for rule in opt.rules.iter_mut() {
        if rule.uses_buffer() {
            rule.buf_ready = true;
        }
    }
    Ok(totals)
}

/// Decodes a rule record's kind (slot 0): 0 frozen, 1 SGD; 2 (Adam) is reserved.
pub fn rule_kind(code: u32) -> Result<RuleKind, Error> {
    match code {
        0 => Ok(RuleKind::Frozen),
        1 => Ok(RuleKind::Sgd),
        _ => Err(Error::InvalidArgs),
    }
}
