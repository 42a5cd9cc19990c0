//! The fused drivers behind the wasm exports: `forward`, `objective`, `gradients` and `step`
//! (forward + objective + gradients + update in one call).
//!
//! They read the args block's meaning from plain Rust values (`bindings` does the decoding)
//! and never allocate. The forward pass packs `W + G` once, then runs the GEMM a block of
//! rows at a time and the elementwise work (`σ`, or the objective, which also writes `d`)
//! on each block right after it, while its `z` is still in cache. The adaptation pass
//! (`adapt.rs`) needs the whole batch's `d`, `unit_entropy` and `unit_loss`, so it runs after the
//! complete objective (all row blocks) and before the weight gradient, outside that fusion.
//! Failure detection is cheap on the common path: the objective's `f64` sums become
//! non-finite whenever any `x` is, so `x` and `targets` are scanned only when a sum is
//! non-finite or a target was out of range (`status::classify`); the gradient kernels return
//! the largest `|·|` they wrote, which is not finite exactly when a value is not.
//!
//! `step` checks before it writes. Where every rule is plain SGD (no momentum, no weight decay)
//! or frozen, a bound does the checking: `|θ − lr·grad| ≤ max|θ| + |lr|·max|grad|` (with a margin
//! for the two roundings), where `max|w|`, `max|g|` come free from packing `W + G` and
//! `max|dw|`, `max|db|` from the gradient kernels. When the bound is below `f32::MAX` every new
//! value is finite and the update is one writing pass. Otherwise, and for every other rule, it
//! first runs every update with `write = false`, and stores parameters, momentum buffers and
//! Adam's moments only when all of them would be finite. With `max_grad_norm > 0` the gradients
//! are clipped first (`clip`; clipping never raises `max |grad|`). The rules are input only: after
//! a successful step the caller advances their `buf_ready` and step counts.

use core::ops::Range;

use crate::adapt::{adapt, AdaptWork};
use crate::clip;
use crate::kernels::{
    adam_update, bias_gradient, gemm, objective, pack_delta, pack_inputs, pack_weights, sgd_update, sigmoid,
    weight_gradient,
};
use crate::objective::{LossCoefficients, Totals, UnitOutputs};
use crate::pack::{pack_len, packs_inputs, strips_len, weights_len};
use crate::rule::{Rule, RuleKind};
use crate::shape::Shape;
use crate::status::{all_finite, classify, Error};

/// What a call reads besides the layer: the batch `x` (`batch × inputs`), its targets
/// (`batch × outputs`, read only when `αC ≠ 0`), and the loss's coefficients. With
/// `labelled: Some(L)` the rows are semi-supervised: rows `0..L` take the cross-entropy term
/// alone (targets `L × outputs`), rows `L..` the entropy term alone.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub shape: Shape,
    pub x: &'a [f32],
    pub targets: Option<&'a [f32]>,
    pub coefficients: LossCoefficients,
    pub labelled: Option<usize>,
}

/// The parameters: `w`, `g` (`outputs × inputs`) and `b` (`outputs`). The layer uses `w + g`.
pub struct Layer<'a> {
    pub w: &'a mut [f32],
    pub g: &'a mut [f32],
    pub b: &'a mut [f32],
}

/// Scratch and outputs. `pack` holds at least `pack::pack_len(shape)` floats (the packed
/// rows of `W + G`, then the strips of `x` where the shape packs them). `delta`, `dw`, `db` are required by
/// `gradients` and `step`; `unit_entropy` and `unit_loss` are written when present. With
/// `adapt`, `gradients` and `step` run the test-time adaptation pass (`adapt.rs`) between the
/// objective and the gradients; it needs `unit_entropy` and `unit_loss`.
pub struct Work<'a> {
    pub pack: &'a mut [f32],
    pub z: &'a mut [f32],
    pub d: &'a mut [f32],
    pub delta: Option<&'a mut [f32]>,
    /// Each unit's entropy in bits.
    pub unit_entropy: Option<&'a mut [f32]>,
    pub unit_loss: Option<&'a mut [f32]>,
    pub dw: Option<&'a mut [f32]>,
    pub db: Option<&'a mut [f32]>,
    pub adapt: Option<AdaptWork<'a>>,
}

/// The three rules (w, g, b, input only), their buffers, and the clipping threshold.
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

/// Every length as the drivers require it (the split drivers of `crate::parallel` too).
pub(crate) fn check_lengths(input: &Input, layer: &Layer, work: &Work) -> Result<(), Error> {
    let shape = input.shape;
    let (xn, wn, zn, o) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
    let ok = input.x.len() == xn
        && layer.w.len() == wn
        && layer.g.len() == wn
        && layer.b.len() == o
        && pack_len(shape).is_some_and(|n| work.pack.len() >= n)
        && work.z.len() == zn
        && work.d.len() == zn
        && len_ok(&work.delta, zn)
        && len_ok(&work.unit_entropy, zn)
        && len_ok(&work.unit_loss, zn)
        && len_ok(&work.dw, wn)
        && len_ok(&work.db, o)
        && work
            .adapt
            .as_ref()
            .is_none_or(|a| a.sample_weights.len() == shape.batch && a.positive.len() == o && a.mean.len() == o);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgs)
    }
}

/// About this many floats of `x` per block of rows of the forward pass (256 KB), so a block
/// stays in cache while the rows of `W + G` pass it; a multiple of 8 rows (the GEMM's tallest
/// tile).
const BLOCK_FLOATS: usize = 1 << 16;

fn block_rows(inputs: usize) -> usize {
    ((BLOCK_FLOATS / inputs.max(1)) & !7).max(8)
}

/// `z = x·(W+G)ᵀ + b` a block of rows at a time, calling `then(range, z_block)` on each block
/// right after its GEMM (`range`: the block's part of every `batch × outputs` array).
#[inline(always)]
fn gemm_by_blocks(
    shape: Shape,
    x: &[f32],
    weights: &[f32],
    b: &[f32],
    z: &mut [f32],
    mut then: impl FnMut(Range<usize>, &[f32]),
) {
    let (step, i, o) = (block_rows(shape.inputs), shape.inputs, shape.outputs);
    let mut n0 = 0;
    while n0 < shape.batch {
        let n1 = (n0 + step).min(shape.batch);
        let block = &mut z[n0 * o..n1 * o];
        gemm(&x[n0 * i..n1 * i], weights, b, block, Shape { batch: n1 - n0, ..shape });
        then(n0 * o..n1 * o, block);
        n0 = n1;
    }
}

/// `W + G` packed at the start of `pack`; returns the packed rows and `max |w|`, `max |g|`.
fn pack_sum<'p>(shape: Shape, layer: &Layer, pack: &'p mut [f32]) -> (&'p mut [f32], [f32; 2]) {
    let weights = &mut pack[..weights_len(shape).unwrap_or(0)];
    let max = pack_weights(layer.w, layer.g, weights, shape);
    (weights, max)
}

/// `z = x·(W+G)ᵀ + b`, `d = σ(z)`. Fails with 1 (non-finite `x`) or 4 when `z` is not finite.
/// Reads neither the targets nor the coefficients.
#[inline(never)] // out of the exports' shared call path, which init()'s self-test compiles first
pub fn forward_pass(input: &Input, layer: &Layer, work: &mut Work) -> Result<(), Error> {
    check_lengths(input, layer, work)?;
    let (shape, x) = (input.shape, input.x);
    let (weights, _) = pack_sum(shape, layer, work.pack);
    let (z, d) = (&mut *work.z, &mut *work.d);
    gemm_by_blocks(shape, x, weights, layer.b, z, |range, block| sigmoid(block, &mut d[range]));
    if all_finite(z) {
        Ok(())
    } else {
        Err(classify(x, None))
    }
}

/// Units of one part, with their coefficients and targets (indexed by unit).
pub(crate) type RowPart<'t, 'a> = (Range<usize>, &'t LossCoefficients, Option<&'a [f32]>);

/// The objective's coefficients and targets by units. With semi-supervised rows, the units
/// before `split` (the labelled rows) have the cross-entropy term alone and the rest the entropy
/// term alone; otherwise `split` is 0 and every unit has the call's own coefficients and targets.
pub(crate) struct RowTerms<'a> {
    split: usize,
    labelled: LossCoefficients,
    unlabelled: LossCoefficients,
    semi: bool,
    /// The targets the call reads (`None` without the cross-entropy term).
    pub targets: Option<&'a [f32]>,
}

impl<'a> RowTerms<'a> {
    /// Fails with `InvalidArgs` when the cross-entropy term has no targets of the right length.
    pub(crate) fn of(input: &Input<'a>) -> Result<Self, Error> {
        let (shape, c) = (input.shape, input.coefficients);
        let split = input.labelled.map_or(0, |l| l * shape.outputs);
        let (labelled, unlabelled) = match input.labelled {
            Some(_) => (LossCoefficients { entropy: 0.0, ..c }, LossCoefficients { cross_entropy: 0.0, ..c }),
            None => (c, c),
        };
        let targets = if c.cross_entropy != 0.0 {
            let want = if input.labelled.is_some() { split } else { shape.z_len() };
            match input.targets {
                Some(y) if y.len() == want => Some(y),
                _ => return Err(Error::InvalidArgs),
            }
        } else {
            None
        };
        Ok(RowTerms { split, labelled, unlabelled, semi: input.labelled.is_some(), targets })
    }

    /// Units `r` in their two parts (either may be empty), each with its coefficients and
    /// targets (indexed by unit).
    pub(crate) fn parts(&self, r: Range<usize>) -> [RowPart<'_, 'a>; 2] {
        let at = self.split.clamp(r.start, r.end);
        [
            (r.start..at, &self.labelled, self.targets),
            (at..r.end, &self.unlabelled, if self.semi { None } else { self.targets }),
        ]
    }
}

/// Forward pass and objective; writes `delta` (when given), `unit_entropy`, `unit_loss`.
#[inline(never)] // one copy for the objective export and gradients_pass (module size)
pub fn objective_pass(input: &Input, layer: &Layer, work: &mut Work) -> Result<Totals, Error> {
    objective_and_max(input, layer, work).map(|(totals, _)| totals)
}

/// `objective_pass`, and `max |w|`, `max |g|` from packing `W + G`.
fn objective_and_max(input: &Input, layer: &Layer, work: &mut Work) -> Result<(Totals, [f32; 2]), Error> {
    check_lengths(input, layer, work)?;
    let (shape, x) = (input.shape, input.x);
    let terms = RowTerms::of(input)?;
    let (weights, max) = pack_sum(shape, layer, work.pack);
    let Work { z, d, delta, unit_entropy, unit_loss, .. } = work;
    let mut totals = Totals::default();
    gemm_by_blocks(shape, x, weights, layer.b, z, |r, block| {
        for (part, c, y) in terms.parts(r.clone()) {
            if part.is_empty() {
                continue;
            }
            let out = UnitOutputs {
                delta: delta.as_deref_mut().map(|v| &mut v[part.clone()]),
                entropy: unit_entropy.as_deref_mut().map(|v| &mut v[part.clone()]),
                loss: unit_loss.as_deref_mut().map(|v| &mut v[part.clone()]),
            };
            let local = part.start - r.start..part.end - r.start;
            let t = objective(&block[local], &mut d[part.clone()], y.map(|y| &y[part.clone()]), c, out);
            totals.loss += t.loss;
            totals.entropy += t.entropy;
            totals.targets_out_of_range |= t.targets_out_of_range;
        }
    });
    if totals.targets_out_of_range || !totals.loss.is_finite() || !totals.entropy.is_finite() {
        return Err(classify(x, terms.targets));
    }
    Ok((totals, max))
}

/// Forward pass, objective, the adaptation pass when `work.adapt` is set (its loss replaces
/// `totals.loss`), `dw` (= `dg`) and `db`. Fails with 4 when the loss or a gradient is not
/// finite.
#[inline(never)] // one copy for the gradients export and step (module size)
pub fn gradients_pass(input: &Input, layer: &Layer, work: &mut Work) -> Result<Totals, Error> {
    gradients_and_max(input, layer, work).map(|(totals, _)| totals)
}

/// The largest `|·|` of the parameters and their gradients in one call: `w`, `g`, `dw`, `db`.
#[derive(Clone, Copy, Debug)]
struct Maxima {
    w: f32,
    g: f32,
    dw: f32,
    db: f32,
}

/// `gradients_pass`, and the maxima `step` bounds the update with.
fn gradients_and_max(input: &Input, layer: &Layer, work: &mut Work) -> Result<(Totals, Maxima), Error> {
    if work.delta.is_none() || work.dw.is_none() || work.db.is_none() {
        return Err(Error::InvalidArgs);
    }
    if work.adapt.is_some() && (work.unit_entropy.is_none() || work.unit_loss.is_none()) {
        return Err(Error::InvalidArgs);
    }
    let (mut totals, [mw, mg]) = objective_and_max(input, layer, work)?;
    let shape = input.shape;
    if let (Some(a), Some(h), Some(unit_loss), Some(delta)) =
        (work.adapt.as_mut(), work.unit_entropy.as_deref(), work.unit_loss.as_deref(), work.delta.as_deref_mut())
    {
        totals.loss = adapt(shape, work.z, work.d, h, unit_loss, delta, input.coefficients.scale, a);
        if !totals.loss.is_finite() {
            return Err(Error::NonFiniteResult);
        }
    }
    let (Some(delta), Some(dw), Some(db)) = (work.delta.as_deref(), work.dw.as_deref_mut(), work.db.as_deref_mut())
    else {
        return Err(Error::InvalidArgs);
    };
    // The pack scratch: the packed weights (done with), the strips of x, the pairs of δ.
    let after_weights = &mut work.pack[weights_len(shape).unwrap_or(0)..];
    let (strips, pairs) = after_weights.split_at_mut(strips_len(shape).unwrap_or(0));
    pack_delta(delta, pairs, shape);
    let x: &[f32] = if packs_inputs(shape) {
        pack_inputs(input.x, strips, shape);
        strips
    } else {
        input.x
    };
    let max_dw = weight_gradient(pairs, x, dw, shape);
    let max_db = bias_gradient(delta, db, shape);
    if !(max_dw.is_finite() && max_db.is_finite()) {
        return Err(Error::NonFiniteResult);
    }
    Ok((totals, Maxima { w: mw, g: mg, dw: max_dw, db: max_db }))
}

/// One training step: `gradients_pass`, optional clipping, then every rule's update, checked
/// before written. On failure `layer` and the buffers are unchanged (scratch in `work`, `dw`
/// and `db` included, may have changed). The rules are not changed either way: after a success
/// the caller sets `buf_ready` where a rule used its buffer and advances the Adam rules' `step`.
#[inline(never)] // out of the exports' shared call path, which init()'s self-test compiles first
pub fn step(input: &Input, layer: &mut Layer, work: &mut Work, opt: &mut Optimizer) -> Result<Totals, Error> {
    check_optimizer(input.shape, opt)?;
    let (totals, max) = gradients_and_max(input, layer, work)?;
    let (Some(dw), Some(db)) = (work.dw.as_deref_mut(), work.db.as_deref_mut()) else {
        return Err(Error::InvalidArgs);
    };
    clip_gradients(dw, db, &opt.rules, opt.max_grad_norm)?;
    let (dw, db) = (&*dw, &*db);
    let Optimizer { rules, bufs, exp_avg, exp_avg_sq, .. } = opt;
    let grads: [&[f32]; 3] = [dw, dw, db];
    let [tw, tg, tb] = [&mut *layer.w, &mut *layer.g, &mut *layer.b];
    let thetas: [&mut [f32]; 3] = [tw, tg, tb];
    let max_b = thetas[2].iter().fold(0, |m, &v| m.max(crate::pack::abs_bits(v)));
    let bounds = [(max.w, max.dw), (max.g, max.dw), (f32::from_bits(max_b), max.db)];
    let proven = (0..3).all(|k| plain_sgd_finite(&rules[k], bounds[k].0, bounds[k].1));
    for write in [false, true] {
        if proven && !write {
            continue;
        }
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
    Ok(totals)
}

/// Whether `rule` provably writes only finite values, without running it: it is frozen, or plain
/// SGD (`θ − lr·grad`, no momentum, no weight decay) with `max|θ| + |lr|·max|grad|` below
/// `f32::MAX` by more than the two roundings of `fl(θ − fl(lr·grad))` can add (each at most a
/// factor `1 + 2⁻²⁴`; the bound, in `f64`, allows `1 + 2⁻²³` for each). NaN anywhere fails it.
fn plain_sgd_finite(rule: &Rule, max_theta: f32, max_grad: f32) -> bool {
    match rule.kind {
        RuleKind::Frozen => true,
        RuleKind::Sgd if rule.momentum == 0.0 && rule.weight_decay == 0.0 => {
            let slack = 1.0 + f32::EPSILON as f64;
            let bound = (max_theta as f64 + (rule.lr as f64).abs() * max_grad as f64 * slack) * slack;
            bound < f32::MAX as f64
        }
        _ => false,
    }
}

/// Every buffer a rule needs is there, as long as its parameter; the clipping norm is 0 or
/// positive and finite.
fn check_optimizer(shape: Shape, opt: &Optimizer) -> Result<(), Error> {
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
    Ok(())
}

/// Scales `dw` and `db` in place to the global norm `max_norm` over the parameters the rules
/// update (`crate::clip`); 0 leaves them alone. A non-finite norm fails with 4.
fn clip_gradients(dw: &mut [f32], db: &mut [f32], rules: &[Rule; 3], max_norm: f32) -> Result<(), Error> {
    if max_norm == 0.0 {
        return Ok(());
    }
    let updated = rules.map(|r| r.kind != RuleKind::Frozen);
    let shared = updated[0] as u32 + updated[1] as u32;
    let mut sq = 0.0;
    if shared > 0 {
        sq += clip::sum_squares(dw) * shared as f64;
    }
    if updated[2] {
        sq += clip::sum_squares(db);
    }
    let coef = clip::coefficient(sq.sqrt(), max_norm).ok_or(Error::NonFiniteResult)?;
    if coef < 1.0 {
        clip::scale(dw, coef);
        clip::scale(db, coef);
    }
    Ok(())
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
