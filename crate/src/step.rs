//! The fused drivers behind the wasm exports: `forward`, `entropy`, `gradients` and `step`
//! (forward + objective + gradients + update in one call).
//!
//! They read the args block's meaning from plain Rust values (`bindings` does the decoding)
//! and never allocate. The forward pass packs `W + G` once, then runs the GEMM a block of
//! rows at a time and the elementwise work (`σ`, or the objective, which also writes `d`)
//! on each block right after it, while its `z` is still in cache. Failure detection is cheap
//! on the common path: the objective's `f64` sums become non-finite whenever any `x` is, so
//! `x` and `targets` are scanned only when a sum is non-finite or a target was out of range
//! (`status::classify`). `step` checks before it writes: it first runs every update with
//! `write = false`, and stores parameters, momentum buffers and `buf_ready` only when all of
//! them would be finite.

use crate::forward::{gemm, sigmoid};
use crate::gradients::{bias_gradient, weight_gradient};
use crate::objective::{objective, Totals, Weights};
use crate::pack::{pack_delta, pack_inputs, pack_len, pack_weights, panels_len, strips_len};
use crate::sgd::{sgd_update, Rule, RuleKind};
use crate::shape::Shape;
use crate::status::{all_finite, classify, Error};

/// The parameters: `w`, `g` (`outputs × inputs`) and `b` (`outputs`). The layer uses `w + g`.
pub struct Layer<'a> {
    pub w: &'a mut [f32],
    pub g: &'a mut [f32],
    pub b: &'a mut [f32],
}

/// Scratch and outputs. `pack` holds at least `pack::pack_len(shape)` floats (the packed
/// panels of `W + G`, the strips of `x`, the column blocks of `δ`). `delta`, `dw`, `db` are required by
/// `gradients` and `step`; `units` and `unit_loss` are written when present.
pub struct Work<'a> {
    pub pack: &'a mut [f32],
    pub z: &'a mut [f32],
    pub d: &'a mut [f32],
    pub delta: Option<&'a mut [f32]>,
    pub units: Option<&'a mut [f32]>,
    pub unit_loss: Option<&'a mut [f32]>,
    pub dw: Option<&'a mut [f32]>,
    pub db: Option<&'a mut [f32]>,
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
        && pack_len(shape).is_some_and(|n| work.pack.len() >= n)
        && work.z.len() == zn
        && work.d.len() == zn
        && len_ok(&work.delta, zn)
        && len_ok(&work.units, zn)
        && len_ok(&work.unit_loss, zn)
        && len_ok(&work.dw, wn)
        && len_ok(&work.db, o);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgs)
    }
}

/// About this many floats of `x` per block of rows of the forward pass (256 KB), so a block
/// and the panel it meets stay in cache; a multiple of 4 rows (the GEMM's tile).
const BLOCK_FLOATS: usize = 1 << 16;

fn block_rows(inputs: usize) -> usize {
    ((BLOCK_FLOATS / inputs.max(1)) & !3).max(4)
}

/// The forward GEMM over rows `n0..n1` of `x` into the same rows of `z`.
fn gemm_rows(shape: Shape, x: &[f32], panels: &[f32], b: &[f32], z: &mut [f32], n0: usize, n1: usize) {
    let (i, o) = (shape.inputs, shape.outputs);
    let rows = Shape { batch: n1 - n0, ..shape };
    gemm(&x[n0 * i..n1 * i], panels, b, &mut z[n0 * o..n1 * o], rows);
}

/// `W + G` packed into the panels at the start of `pack`; returns them.
fn pack_panels<'p>(shape: Shape, layer: &Layer, pack: &'p mut [f32]) -> &'p mut [f32] {
    let panels = &mut pack[..panels_len(shape).unwrap_or(0)];
    pack_weights(layer.w, layer.g, panels, shape);
    panels
}

/// `z = x·(W+G)ᵀ + b`, `d = σ(z)`. Fails with 1 (non-finite `x`) or 4 when `z` is not finite.
pub fn forward_pass(shape: Shape, x: &[f32], layer: &Layer, work: &mut Work) -> Result<(), Error> {
    check_lengths(shape, x, layer, work)?;
    let panels = pack_panels(shape, layer, work.pack);
    let (z, d) = (&mut *work.z, &mut *work.d);
    let (step, o) = (block_rows(shape.inputs), shape.outputs);
    let mut n0 = 0;
    while n0 < shape.batch {
        let n1 = (n0 + step).min(shape.batch);
        gemm_rows(shape, x, panels, layer.b, z, n0, n1);
        sigmoid(&z[n0 * o..n1 * o], &mut d[n0 * o..n1 * o]);
        n0 = n1;
    }
    if all_finite(z) {
        Ok(())
    } else {
        Err(classify(x, None))
    }
}

/// Forward pass and objective; writes `delta` (when given), `units`, `unit_loss`.
#[inline(never)] // one copy for the entropy export and gradients_pass (module size)
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
    let panels = pack_panels(shape, layer, work.pack);
    let Work { z, d, delta, units, unit_loss, .. } = work;
    let (step, o) = (block_rows(shape.inputs), shape.outputs);
    let mut totals = Totals::default();
    let mut n0 = 0;
    while n0 < shape.batch {
        let n1 = (n0 + step).min(shape.batch);
        gemm_rows(shape, x, panels, layer.b, z, n0, n1);
        let r = n0 * o..n1 * o;
        let t = objective(
            &z[r.clone()],
            &mut d[r.clone()],
            targets.map(|y| &y[r.clone()]),
            weights,
            delta.as_deref_mut().map(|v| &mut v[r.clone()]),
            units.as_deref_mut().map(|v| &mut v[r.clone()]),
            unit_loss.as_deref_mut().map(|v| &mut v[r.clone()]),
        );
        totals.loss += t.loss;
        totals.entropy += t.entropy;
        totals.targets_out_of_range |= t.targets_out_of_range;
        n0 = n1;
    }
    if totals.targets_out_of_range || !totals.loss.is_finite() || !totals.entropy.is_finite() {
        return Err(classify(x, targets));
    }
    Ok(totals)
}

/// Forward pass, objective, `dw` (= `dg`) and `db`. Fails with 4 when a gradient is not finite.
#[inline(never)] // one copy for the gradients export and step (module size)
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
    let totals = entropy_pass(shape, x, targets, weights, layer, work)?;
    let (Some(delta), Some(dw), Some(db)) = (work.delta.as_deref(), work.dw.as_deref_mut(), work.db.as_deref_mut())
    else {
        return Err(Error::InvalidArgs);
    };
    let rest = &mut work.pack[panels_len(shape).unwrap_or(0)..];
    let (strips, columns) = rest.split_at_mut(strips_len(shape).unwrap_or(0));
    pack_inputs(x, strips, shape);
    pack_delta(delta, columns, shape);
    let finite = weight_gradient(columns, strips, dw, shape);
    bias_gradient(delta, db, shape);
    if !(finite && all_finite(db)) {
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
