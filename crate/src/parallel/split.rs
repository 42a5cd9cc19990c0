//! The drivers of `crate::step` split into phases of chunks (`super::Team`): the same calls,
//! the same checks and failure codes, on any number of threads.
//!
//! Every element of `z`, `d`, `δ`, the per-unit outputs, `dw`, `db` and of the updated
//! parameters and optimizer state is computed by exactly the operations, in the same order, as
//! `crate::step` (a chunk is a range of rows, outputs or elements, never part of a sum), so they
//! are bitwise those of the one-thread drivers. Only the `f64` sums (loss, entropy, the clipping
//! norm) are added up per chunk and then over the chunks in order: they agree with the one-thread
//! drivers to rounding, and are the same for every number of threads.
//!
//! Phases of a step: pack `W + G` (chunks of panels) → forward GEMM and objective (chunks of
//! rows) → [the adaptation pass, on the caller] → `dw`, `db` (chunks of outputs) → [clipping
//! norm] → updates, checked (chunks of elements) → updates, written.

use core::ops::Range;

use super::{chunk, chunk_size, Job, Team};
use crate::adapt::adapt;
use crate::clip;
use crate::kernels::{adam_update, gemm, objective as objective_kernel, pack_weights, sgd_update, sigmoid};
use crate::objective::{LossCoefficients, Totals, UnitOutputs};
use crate::pack::{pack_len, panels_len, WIDE};
use crate::rule::{Rule, RuleKind};
use crate::shape::Shape;
use crate::status::{all_finite, classify, Error};
use crate::step::{Input, Layer, Optimizer, Work};

/// Chunks per phase at most (the per-chunk results live on the caller's stack).
pub const MAX_CHUNKS: usize = 64;
/// Multiply-adds a chunk should hold at least, so that claiming it costs little next to it.
const MIN_CHUNK_WORK: usize = 1 << 15;
/// Floats a chunk of an elementwise phase (packing, updates) should hold at least.
const MIN_CHUNK_FLOATS: usize = 1 << 14;

/// A slice that several chunks write disjoint parts of.
#[derive(Clone, Copy)]
struct Parts<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: `part` hands out disjoint ranges only (its callers' contract); the data is plain.
unsafe impl<T: Send> Sync for Parts<T> {}
unsafe impl<T: Send> Send for Parts<T> {}

impl<T> Parts<T> {
    fn new(s: &mut [T]) -> Self {
        Parts { ptr: s.as_mut_ptr(), len: s.len() }
    }

    /// Elements `r` of the slice.
    ///
    /// # Safety
    /// No other live reference overlaps `r`: the slice `new` took is not used while parts of it
    /// live, and parts given out at once are disjoint.
    unsafe fn part<'a>(self, r: Range<usize>) -> &'a mut [T] {
        assert!(r.start <= r.end && r.end <= self.len);
        // SAFETY: in bounds (asserted); exclusive by the function contract.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(r.start), r.end - r.start) }
    }

    /// Element `k`.
    ///
    /// # Safety
    /// As for `part`.
    unsafe fn at<'a>(self, k: usize) -> &'a mut T {
        // SAFETY: as for `part`.
        unsafe { &mut self.part(k..k + 1)[0] }
    }
}

/// What each chunk of a phase reports.
#[derive(Clone, Copy, Default)]
struct Report {
    loss: f64,
    entropy: f64,
    squares: f64,
    /// Targets out of range (objective), a value not finite (forward, gradients), an update
    /// that would write a non-finite value.
    flag: bool,
}

/// Runs `job` over `chunks` chunks and hands back their reports, in chunk order.
fn phase(team: &mut Team, chunks: usize, job: &(dyn Fn(usize, &mut Report) + Sync)) -> [Report; MAX_CHUNKS] {
    assert!(chunks <= MAX_CHUNKS);
    let mut reports = [Report::default(); MAX_CHUNKS];
    let slots = Parts::new(&mut reports[..]);
    let run: &Job = &|k: usize| {
        // SAFETY: chunk k alone writes report k.
        job(k, unsafe { slots.at(k) })
    };
    team.run(chunks, run);
    reports
}

/// Lengths as `crate::step` requires them (the bindings have checked them against memory).
fn check_lengths(input: &Input, layer: &Layer, work: &Work) -> Result<(), Error> {
    let shape = input.shape;
    let (xn, wn, zn, o) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
    let len_ok = |v: &Option<&mut [f32]>, n: usize| v.as_ref().is_none_or(|s| s.len() == n);
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

/// `W + G` into the panels at the start of `pack`, a group of panels per chunk.
fn pack_phase<'p>(team: &mut Team, shape: Shape, layer: &Layer, pack: &'p mut [f32]) -> &'p [f32] {
    let Shape { inputs, outputs, .. } = shape;
    let panels = &mut pack[..panels_len(shape).unwrap_or(0)];
    let groups = outputs.div_ceil(WIDE);
    let size = chunk_size(groups, MIN_CHUNK_FLOATS.div_ceil(WIDE * inputs), MAX_CHUNKS, 1);
    let chunks = groups.div_ceil(size);
    let out = Parts::new(panels);
    let (w, g) = (&*layer.w, &*layer.g);
    phase(team, chunks, &|k, _| {
        let r = chunk(k, size, groups);
        let (o0, o1) = (r.start * WIDE, (r.end * WIDE).min(outputs));
        let sub = Shape { outputs: o1 - o0, ..shape };
        let len = panels_len(sub).unwrap_or(0);
        // SAFETY: panels of outputs o0.. start at float o0·inputs (all before are 8 wide); the
        // chunks' ranges are disjoint.
        let dst = unsafe { out.part(o0 * inputs..o0 * inputs + len) };
        pack_weights(&w[o0 * inputs..o1 * inputs], &g[o0 * inputs..o1 * inputs], dst, sub);
    });
    &pack[..panels_len(shape).unwrap_or(0)]
}

/// Rows per block of the GEMM inside a chunk, as `crate::step` blocks them (x in cache).
fn block_rows(inputs: usize) -> usize {
    (((1 << 16) / inputs.max(1)) & !3).max(4)
}

/// The rows of each chunk of the forward phase.
fn row_chunks(shape: Shape) -> (usize, usize) {
    let per_row = shape.inputs * shape.outputs;
    let size = chunk_size(shape.batch, MIN_CHUNK_WORK.div_ceil(per_row.max(1)), MAX_CHUNKS, 4);
    (size, shape.batch.div_ceil(size))
}

/// `z = x·(W+G)ᵀ + b` over the rows `rows`, a block at a time, calling `then(range, z_block)`
/// after each block's GEMM (as `crate::step` does).
fn gemm_rows(
    shape: Shape,
    x: &[f32],
    panels: &[f32],
    b: &[f32],
    z: &mut [f32],
    rows: Range<usize>,
    mut then: impl FnMut(Range<usize>, &mut [f32]),
) {
    let (step, i, o) = (block_rows(shape.inputs), shape.inputs, shape.outputs);
    let mut n0 = rows.start;
    while n0 < rows.end {
        let n1 = (n0 + step).min(rows.end);
        let block = &mut z[(n0 - rows.start) * o..(n1 - rows.start) * o];
        gemm(&x[n0 * i..n1 * i], panels, b, block, Shape { batch: n1 - n0, ..shape });
        then(n0 * o..n1 * o, block);
        n0 = n1;
    }
}

/// As `crate::step::forward_pass`.
pub fn forward_pass(team: &mut Team, input: &Input, layer: &Layer, work: &mut Work) -> Result<(), Error> {
    check_lengths(input, layer, work)?;
    let (shape, x) = (input.shape, input.x);
    let panels = pack_phase(team, shape, layer, work.pack);
    let (size, chunks) = row_chunks(shape);
    let o = shape.outputs;
    let (z, d) = (Parts::new(work.z), Parts::new(work.d));
    let b = &*layer.b;
    let reports = phase(team, chunks, &|k, report| {
        let rows = chunk(k, size, shape.batch);
        // SAFETY: chunk k alone writes rows `rows` of z and d.
        let zc = unsafe { z.part(rows.start * o..rows.end * o) };
        gemm_rows(shape, x, panels, b, zc, rows, |r, block| {
            // SAFETY: as above (a block of the chunk's rows).
            sigmoid(block, unsafe { d.part(r) })
        });
        report.flag = !all_finite(zc);
    });
    if reports[..chunks].iter().any(|r| r.flag) {
        return Err(classify(x, None));
    }
    Ok(())
}

/// As `crate::step::objective_pass` (semi-supervised rows included: rows `0..L` take the
/// cross-entropy term alone, the rest the entropy term alone).
pub fn objective_pass(team: &mut Team, input: &Input, layer: &Layer, work: &mut Work) -> Result<Totals, Error> {
    check_lengths(input, layer, work)?;
    let (shape, x, coefficients) = (input.shape, input.x, &input.coefficients);
    let split = input.labelled.map_or(0, |l| l * shape.outputs);
    let (labelled, unlabelled) = match input.labelled {
        Some(_) => (
            LossCoefficients { entropy: 0.0, ..*coefficients },
            LossCoefficients { cross_entropy: 0.0, ..*coefficients },
        ),
        None => (*coefficients, *coefficients),
    };
    let targets = if coefficients.cross_entropy != 0.0 {
        let want = if input.labelled.is_some() { split } else { shape.z_len() };
        match input.targets {
            Some(y) if y.len() == want => Some(y),
            _ => return Err(Error::InvalidArgs),
        }
    } else {
        None
    };
    let panels = pack_phase(team, shape, layer, work.pack);
    let (size, chunks) = row_chunks(shape);
    let o = shape.outputs;
    let Work { z, d, delta, unit_entropy, unit_loss, .. } = work;
    let (z, d) = (Parts::new(z), Parts::new(d));
    let part = |v: &mut Option<&mut [f32]>| v.as_deref_mut().map(Parts::new);
    let (delta, entropy, loss) = (part(delta), part(unit_entropy), part(unit_loss));
    let b = &*layer.b;
    let (labelled, unlabelled) = (&labelled, &unlabelled);
    let reports = phase(team, chunks, &|k, report| {
        let rows = chunk(k, size, shape.batch);
        // SAFETY: chunk k alone writes rows `rows` of every batch × outputs array.
        let zc = unsafe { z.part(rows.start * o..rows.end * o) };
        gemm_rows(shape, x, panels, b, zc, rows, |r, block| {
            // As crate::step: without semi-supervised rows, split = 0 puts every unit in the
            // second part, which then has the call's own coefficients and targets.
            let at = split.clamp(r.start, r.end);
            for (p, c, y) in [
                (r.start..at, labelled, targets),
                (at..r.end, unlabelled, if input.labelled.is_some() { None } else { targets }),
            ] {
                if p.is_empty() {
                    continue;
                }
                // SAFETY: as above (units of the chunk's rows).
                let (out, dp) = unsafe {
                    (
                        UnitOutputs {
                            delta: delta.map(|v| v.part(p.clone())),
                            entropy: entropy.map(|v| v.part(p.clone())),
                            loss: loss.map(|v| v.part(p.clone())),
                        },
                        d.part(p.clone()),
                    )
                };
                let local = p.start - r.start..p.end - r.start;
                let t = objective_kernel(&block[local], dp, y.map(|y| &y[p.clone()]), c, out);
                report.loss += t.loss;
                report.entropy += t.entropy;
                report.flag |= t.targets_out_of_range;
            }
        });
    });
    let mut totals = Totals::default();
    for r in &reports[..chunks] {
        totals.loss += r.loss;
        totals.entropy += r.entropy;
        totals.targets_out_of_range |= r.flag;
    }
    if totals.targets_out_of_range || !totals.loss.is_finite() || !totals.entropy.is_finite() {
        return Err(classify(x, targets));
    }
    Ok(totals)
}

/// The gradients' results besides `dw`, `db`: the sums of squares the clipping norm needs.
struct Squares {
    dw: f64,
    db: f64,
}

/// As `crate::step::gradients_pass`; also the sums of squares of `dw` and `db`.
fn gradients_and_squares(
    team: &mut Team,
    input: &Input,
    layer: &Layer,
    work: &mut Work,
) -> Result<(Totals, Squares), Error> {
    if work.delta.is_none() || work.dw.is_none() || work.db.is_none() {
        return Err(Error::InvalidArgs);
    }
    if work.adapt.is_some() && (work.unit_entropy.is_none() || work.unit_loss.is_none()) {
        return Err(Error::InvalidArgs);
    }
    let mut totals = objective_pass(team, input, layer, work)?;
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
    let Shape { batch, inputs, outputs } = shape;
    let size = chunk_size(outputs, MIN_CHUNK_WORK.div_ceil((batch * inputs).max(1)), MAX_CHUNKS, 4);
    let chunks = outputs.div_ceil(size);
    let (dwp, dbp) = (Parts::new(dw), Parts::new(db));
    let x = input.x;
    let reports = phase(team, chunks, &|k, report| {
        let outs = chunk(k, size, outputs);
        // SAFETY: chunk k alone writes rows `outs` of dw and entries `outs` of db.
        let (rows, bias) = unsafe { (dwp.part(outs.start * inputs..outs.end * inputs), dbp.part(outs.clone())) };
        weight_rows(delta, x, rows, bias, shape, outs.start);
        report.flag = !(all_finite(rows) && all_finite(bias));
        report.squares = clip::sum_squares(rows);
        report.loss = clip::sum_squares(bias);
    });
    let mut squares = Squares { dw: 0.0, db: 0.0 };
    for r in &reports[..chunks] {
        if r.flag {
            return Err(Error::NonFiniteResult);
        }
        squares.dw += r.squares;
        squares.db += r.loss;
    }
    Ok((totals, squares))
}

/// `dw[o][i] = Σₙ δ[n][o]·x[n][i]` and `db[o] = Σₙ δ[n][o]` for the outputs `o0..o0 + rows`,
/// each summed over the batch in order from 0 with separate multiplies and adds: the bits of
/// the gradient kernels (`crate::gradients`).
fn weight_rows(delta: &[f32], x: &[f32], dw: &mut [f32], db: &mut [f32], shape: Shape, o0: usize) {
    let Shape { batch, inputs, outputs } = shape;
    for (j, (row, bias)) in dw.chunks_exact_mut(inputs).zip(db.iter_mut()).enumerate() {
        row.fill(0.0);
        let mut s = 0.0f32;
        for n in 0..batch {
            let dv = delta[n * outputs + o0 + j];
            s += dv;
            for (a, &xv) in row.iter_mut().zip(&x[n * inputs..(n + 1) * inputs]) {
                *a += dv * xv;
            }
        }
        *bias = s;
    }
}

/// As `crate::step::gradients_pass`.
pub fn gradients_pass(team: &mut Team, input: &Input, layer: &Layer, work: &mut Work) -> Result<Totals, Error> {
    gradients_and_squares(team, input, layer, work).map(|(t, _)| t)
}

/// As `crate::step::step`: the gradients, clipping, then the updates, checked before written.
pub fn step(
    team: &mut Team,
    input: &Input,
    layer: &mut Layer,
    work: &mut Work,
    opt: &mut Optimizer,
) -> Result<Totals, Error> {
    check_optimizer(input.shape, opt)?;
    let (totals, squares) = gradients_and_squares(team, input, layer, work)?;
    let (Some(dw), Some(db)) = (work.dw.as_deref_mut(), work.db.as_deref_mut()) else {
        return Err(Error::InvalidArgs);
    };
    let coef = clip_coefficient(&squares, &opt.rules, opt.max_grad_norm)?;
    let n = input.shape.w_len();
    let size = chunk_size(n, MIN_CHUNK_FLOATS, MAX_CHUNKS, 16);
    let chunks = n.div_ceil(size).max(1);
    let Optimizer { rules, bufs, exp_avg, exp_avg_sq, .. } = opt;
    let rules = &*rules;
    let parts = |v: &mut Option<&mut [f32]>| v.as_deref_mut().map(Parts::new);
    let bufs = [parts(&mut bufs[0]), parts(&mut bufs[1]), parts(&mut bufs[2])];
    let ms = [parts(&mut exp_avg[0]), parts(&mut exp_avg[1]), parts(&mut exp_avg[2])];
    let vs = [parts(&mut exp_avg_sq[0]), parts(&mut exp_avg_sq[1]), parts(&mut exp_avg_sq[2])];
    let thetas = [Parts::new(layer.w), Parts::new(layer.g), Parts::new(layer.b)];
    let (dwp, dbp) = (Parts::new(dw), Parts::new(db));
    let outputs = input.shape.outputs;
    for write in [false, true] {
        let reports = phase(team, chunks, &|k, report| {
            let r = chunk(k, size, n);
            // SAFETY: chunk k alone touches elements `r` of w, g, dw and their state, and
            // chunk 0 alone b, db and theirs.
            unsafe {
                let grad = dwp.part(r.clone());
                if !write && coef < 1.0 {
                    clip::scale(grad, coef);
                }
                let mut ok = true;
                for p in 0..2 {
                    ok &= update(thetas[p], grad, bufs[p], ms[p], vs[p], &rules[p], r.clone(), write);
                }
                if k == 0 {
                    let bias = dbp.part(0..outputs);
                    if !write && coef < 1.0 {
                        clip::scale(bias, coef);
                    }
                    ok &= update(thetas[2], bias, bufs[2], ms[2], vs[2], &rules[2], 0..outputs, write);
                }
                report.flag = !ok;
            }
        });
        if reports[..chunks].iter().any(|r| r.flag) {
            // Only the checking pass can get here: the writing pass computes the same values.
            return Err(Error::NonFiniteResult);
        }
    }
    Ok(totals)
}

/// One parameter's update over its elements `r`, by its rule's kind.
///
/// # Safety
/// No other live reference overlaps elements `r` of `theta` and its state.
#[allow(clippy::too_many_arguments)]
unsafe fn update(
    theta: Parts<f32>,
    grad: &[f32],
    buf: Option<Parts<f32>>,
    m: Option<Parts<f32>>,
    v: Option<Parts<f32>>,
    rule: &Rule,
    r: Range<usize>,
    write: bool,
) -> bool {
    // SAFETY: per the function contract.
    unsafe {
        let theta = theta.part(r.clone());
        match (rule.kind, m, v) {
            (RuleKind::Frozen, _, _) => true,
            (RuleKind::Sgd, _, _) => sgd_update(theta, grad, buf.map(|b| b.part(r.clone())), rule, write),
            (RuleKind::Adam, Some(m), Some(v)) => adam_update(theta, grad, m.part(r.clone()), v.part(r), rule, write),
            (RuleKind::Adam, _, _) => false,
        }
    }
}

/// As `crate::step`'s check: every buffer a rule needs is there, as long as its parameter;
/// the clipping norm is 0 or positive and finite.
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

/// The clipping coefficient (`crate::clip`) from the gradients' sums of squares; 1 when
/// clipping is off.
fn clip_coefficient(squares: &Squares, rules: &[Rule; 3], max_norm: f32) -> Result<f32, Error> {
    if max_norm == 0.0 {
        return Ok(1.0);
    }
    let updated = rules.map(|r| r.kind != RuleKind::Frozen);
    let shared = updated[0] as u32 + updated[1] as u32;
    let mut sq = 0.0;
    if shared > 0 {
        sq += squares.dw * shared as f64;
    }
    if updated[2] {
        sq += squares.db;
    }
    clip::coefficient(sq.sqrt(), max_norm).ok_or(Error::NonFiniteResult)
}
