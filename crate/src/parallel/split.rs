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
//! Phases of a step: pack `W + G` (chunks of output rows) → forward GEMM and objective, with
//! `δ`'s pairs and `x`'s strips for these rows (chunks of rows) → [the caller: sums, the
//! adaptation pass (then the pairs, by rows again)] → `dw`, `db` (chunks of pairs of outputs)
//! → [the caller: the clipping norm, the bound that proves plain SGD finite] → updates (chunks
//! of elements), checked first unless proven.

use core::ops::Range;

use super::{chunk, chunk_size, Job, Team};
use crate::adapt::adapt;
use crate::clip;
use crate::kernels::{
    adam_update, gemm, objective as objective_kernel, pack_weights, sgd_update, sigmoid, weight_gradient,
};
use crate::objective::{Totals, UnitOutputs};
use crate::pack::{abs_bits, flush, packs_inputs, strips_len, weights_len, weights_stride, STRIP};
use crate::rule::{Rule, RuleKind};
use crate::shape::Shape;
use crate::status::{all_finite, classify, Error};
use crate::step::{check_lengths, Input, Layer, Optimizer, RowTerms, Work};

/// Chunks per phase at most (the per-chunk results live on the caller's stack).
pub const MAX_CHUNKS: usize = 64;
/// Chunks a phase aims for: enough that a thread holding one up (a busy core) costs little.
const CHUNKS: usize = 16;
/// Multiply-adds a chunk should hold at least, so that claiming it costs little next to it.
const MIN_CHUNK_WORK: usize = 1 << 14;
/// Floats a chunk of an elementwise phase (packing, updates) should hold at least.
const MIN_CHUNK_FLOATS: usize = 1 << 13;
/// Rows per block of the forward GEMM (as `crate::step`): a block of `x` stays in cache while
/// the rows of `W + G` pass it; a multiple of 8 rows (the GEMM's tallest tile).
const BLOCK_FLOATS: usize = 1 << 16;

fn block_rows(inputs: usize) -> usize {
    ((BLOCK_FLOATS / inputs.max(1)) & !7).max(8)
}

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
    /// Sums of squares of `dw` and `db` (the clipping norm).
    squares: [f64; 2],
    /// Bits of the largest `|·|` (`pack::abs_bits`: NaN above ∞): `w`, `g` from packing, `dw`,
    /// `db` from the gradients.
    max: [u32; 2],
    /// Targets out of range (objective), a value not finite (forward), an update that would
    /// write a non-finite value.
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

/// The largest of the chunks' maxima, as floats.
fn max_of(reports: &[Report]) -> [f32; 2] {
    let m = reports.iter().fold([0u32; 2], |m, r| [m[0].max(r.max[0]), m[1].max(r.max[1])]);
    m.map(f32::from_bits)
}

/// The pack scratch, as `crate::step` lays it out: the packed `W + G`, the strips of `x` (where
/// the shape packs them), the pairs of `δ`.
struct Scratch<'p> {
    weights: &'p mut [f32],
    strips: &'p mut [f32],
    pairs: &'p mut [f32],
}

fn scratch(shape: Shape, pack: &mut [f32]) -> Scratch<'_> {
    let (weights, rest) = pack.split_at_mut(weights_len(shape).unwrap_or(0));
    let (strips, pairs) = rest.split_at_mut(strips_len(shape).unwrap_or(0));
    Scratch { weights, strips, pairs }
}

/// `W + G` into its packed rows, a range of outputs per chunk; returns `max |w|`, `max |g|`.
fn pack_phase(team: &mut Team, shape: Shape, layer: &Layer, weights: &mut [f32]) -> [f32; 2] {
    let Shape { inputs, outputs, .. } = shape;
    let stride = weights_stride(inputs).unwrap_or(0);
    let size = chunk_size(outputs, MIN_CHUNK_FLOATS.div_ceil(stride.max(1)), CHUNKS, 1);
    let chunks = outputs.div_ceil(size);
    let out = Parts::new(weights);
    let (w, g) = (&*layer.w, &*layer.g);
    let reports = phase(team, chunks, &|k, report| {
        let r = chunk(k, size, outputs);
        let sub = Shape { outputs: r.len(), ..shape };
        // SAFETY: chunk k alone writes the packed rows of its outputs.
        let dst = unsafe { out.part(r.start * stride..r.end * stride) };
        let m = pack_weights(&w[r.start * inputs..r.end * inputs], &g[r.start * inputs..r.end * inputs], dst, sub);
        report.max = m.map(abs_bits);
    });
    max_of(&reports[..chunks])
}

/// The rows of each chunk of the forward phase: a multiple of 8 (the GEMM's tallest tile), at
/// most a block unless that would make more than `MAX_CHUNKS` chunks (a chunk then runs its
/// rows a block at a time).
fn row_chunks(shape: Shape) -> (usize, usize) {
    let per_row = (shape.inputs * shape.outputs).max(1);
    let size = chunk_size(shape.batch, MIN_CHUNK_WORK.div_ceil(per_row), CHUNKS, 8)
        .min(block_rows(shape.inputs))
        .max(shape.batch.div_ceil(MAX_CHUNKS).next_multiple_of(8));
    (size, shape.batch.div_ceil(size))
}

/// `z = x·(W+G)ᵀ + b` over the rows `rows`, a block at a time, calling `then(range, z_block)`
/// after each block's GEMM (as `crate::step` does; `range` is in units of the whole batch).
fn gemm_rows(
    shape: Shape,
    x: &[f32],
    weights: &[f32],
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
        gemm(&x[n0 * i..n1 * i], weights, b, block, Shape { batch: n1 - n0, ..shape });
        then(n0 * o..n1 * o, block);
        n0 = n1;
    }
}

/// Where the gradients read `δ` and `x` from, written by rows: the pairs of `δ`
/// (`pack::pack_delta`'s layout, flushed) and, where the shape packs them, the strips of `x`
/// (`pack::pack_inputs`'s layout). The same floats as those kernels write.
#[derive(Clone, Copy)]
struct RowPacks {
    pairs: Parts<f32>,
    strips: Option<Parts<f32>>,
}

impl RowPacks {
    /// Rows `rows` of both, from those rows of `δ` (`delta` holds them alone) and of `x`.
    ///
    /// # Safety
    /// No other thread writes these rows of the packings at the same time.
    unsafe fn write(self, shape: Shape, delta: &[f32], x: &[f32], rows: Range<usize>) {
        let Shape { batch, inputs, outputs } = shape;
        let full = outputs / 2;
        for n in rows.clone() {
            let row = &delta[(n - rows.start) * outputs..][..outputs];
            for p in 0..full {
                let at = 2 * (p * batch + n);
                // SAFETY: row n of pair block p: written by this chunk alone.
                let dst = unsafe { self.pairs.part(at..at + 2) };
                dst[0] = flush(row[2 * p]);
                dst[1] = flush(row[2 * p + 1]);
            }
            if outputs % 2 == 1 {
                // SAFETY: as above.
                unsafe { *self.pairs.at(2 * full * batch + n) = flush(row[outputs - 1]) };
            }
        }
        if let Some(strips) = self.strips {
            for s in 0..inputs / STRIP {
                for n in rows.clone() {
                    let at = (s * batch + n) * STRIP;
                    // SAFETY: row n of strip s: written by this chunk alone.
                    unsafe { strips.part(at..at + STRIP) }.copy_from_slice(&x[n * inputs + s * STRIP..][..STRIP]);
                }
            }
        }
    }
}

/// As `crate::step::forward_pass`.
pub fn forward_pass(team: &mut Team, input: &Input, layer: &Layer, work: &mut Work) -> Result<(), Error> {
    check_lengths(input, layer, work)?;
    let (shape, x) = (input.shape, input.x);
    let weights = scratch(shape, work.pack).weights;
    pack_phase(team, shape, layer, weights);
    let weights = &*weights;
    let (size, chunks) = row_chunks(shape);
    let o = shape.outputs;
    let (z, d) = (Parts::new(work.z), Parts::new(work.d));
    let b = &*layer.b;
    let reports = phase(team, chunks, &|k, report| {
        let rows = chunk(k, size, shape.batch);
        // SAFETY: chunk k alone writes rows `rows` of z and d.
        let zc = unsafe { z.part(rows.start * o..rows.end * o) };
        gemm_rows(shape, x, weights, b, zc, rows, |r, block| {
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

/// As `crate::step::objective_pass`.
pub fn objective_pass(team: &mut Team, input: &Input, layer: &Layer, work: &mut Work) -> Result<Totals, Error> {
    objective_and_max(team, input, layer, work, false).map(|(t, _)| t)
}

/// `objective_pass` (semi-supervised rows included, as `crate::step`), and `max |w|`, `max |g|`;
/// with `packs`, also `δ`'s pairs and `x`'s strips, row by row as each chunk's `δ` is done.
fn objective_and_max(
    team: &mut Team,
    input: &Input,
    layer: &Layer,
    work: &mut Work,
    packs: bool,
) -> Result<(Totals, [f32; 2]), Error> {
    check_lengths(input, layer, work)?;
    let (shape, x) = (input.shape, input.x);
    let terms = RowTerms::of(input)?;
    let Scratch { weights, strips, pairs } = scratch(shape, work.pack);
    let max = pack_phase(team, shape, layer, weights);
    let weights = &*weights;
    let row_packs = (packs && work.delta.is_some())
        .then(|| RowPacks { pairs: Parts::new(pairs), strips: packs_inputs(shape).then(|| Parts::new(strips)) });
    let (size, chunks) = row_chunks(shape);
    let o = shape.outputs;
    let Work { z, d, delta, unit_entropy, unit_loss, .. } = work;
    let (z, d) = (Parts::new(z), Parts::new(d));
    let part = |v: &mut Option<&mut [f32]>| v.as_deref_mut().map(Parts::new);
    let (delta, entropy, loss) = (part(delta), part(unit_entropy), part(unit_loss));
    let b = &*layer.b;
    let terms = &terms;
    let reports = phase(team, chunks, &|k, report| {
        let rows = chunk(k, size, shape.batch);
        // SAFETY: chunk k alone writes rows `rows` of every batch × outputs array.
        let zc = unsafe { z.part(rows.start * o..rows.end * o) };
        gemm_rows(shape, x, weights, b, zc, rows.clone(), |r, block| {
            for (p, c, y) in terms.parts(r.clone()) {
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
        if let (Some(packs), Some(delta)) = (row_packs, delta) {
            // SAFETY: the chunk's rows of δ, written above by this chunk; its rows of the
            // packings, written by this chunk alone.
            unsafe { packs.write(shape, delta.part(rows.start * o..rows.end * o), x, rows.clone()) };
        }
    });
    let mut totals = Totals::default();
    for r in &reports[..chunks] {
        totals.loss += r.loss;
        totals.entropy += r.entropy;
        totals.targets_out_of_range |= r.flag;
    }
    if totals.targets_out_of_range || !totals.loss.is_finite() || !totals.entropy.is_finite() {
        return Err(classify(x, terms.targets));
    }
    Ok((totals, max))
}

/// What the gradients give `step` besides `dw` and `db`: the largest `|·|` of `w`, `g`, `dw`,
/// `db` (the bound that proves plain SGD finite) and the sums of squares of `dw`, `db` (the
/// clipping norm; only with `squares`).
struct Summary {
    max: [f32; 4],
    squares: [f64; 2],
}

/// As `crate::step`'s gradients, and the summary.
fn gradients_and_summary(
    team: &mut Team,
    input: &Input,
    layer: &Layer,
    work: &mut Work,
    squares: bool,
) -> Result<(Totals, Summary), Error> {
    if work.delta.is_none() || work.dw.is_none() || work.db.is_none() {
        return Err(Error::InvalidArgs);
    }
    if work.adapt.is_some() && (work.unit_entropy.is_none() || work.unit_loss.is_none()) {
        return Err(Error::InvalidArgs);
    }
    // The adaptation pass changes δ after the objective: then the pairs are packed after it.
    let adapting = work.adapt.is_some();
    let (mut totals, [mw, mg]) = objective_and_max(team, input, layer, work, !adapting)?;
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
    let Scratch { strips, pairs, .. } = scratch(shape, work.pack);
    let x = input.x;
    if adapting {
        let packs = RowPacks { pairs: Parts::new(pairs), strips: packs_inputs(shape).then(|| Parts::new(strips)) };
        let (size, chunks) = row_chunks(shape);
        phase(team, chunks, &|k, _| {
            let rows = chunk(k, size, shape.batch);
            let o = shape.outputs;
            // SAFETY: chunk k alone writes its rows of the packings.
            unsafe { packs.write(shape, &delta[rows.start * o..rows.end * o], x, rows) }
        });
    }
    let (pairs, source) = (&*pairs, if packs_inputs(shape) { &*strips } else { x });
    let Shape { batch, inputs, outputs } = shape;
    // Pairs of outputs per chunk (δ's pairs of a range of outputs are contiguous when it starts
    // at an even output and ends at an even one or at the last).
    let size = chunk_size(outputs, MIN_CHUNK_WORK.div_ceil((batch * inputs).max(1)), CHUNKS, 2);
    let chunks = outputs.div_ceil(size);
    let (dwp, dbp) = (Parts::new(dw), Parts::new(db));
    let reports = phase(team, chunks, &|k, report| {
        let r = chunk(k, size, outputs);
        let sub = Shape { outputs: r.len(), ..shape };
        // SAFETY: chunk k alone writes rows `r` of dw and entries `r` of db.
        let (rows, bias) = unsafe { (dwp.part(r.start * inputs..r.end * inputs), dbp.part(r.clone())) };
        let max_dw = weight_gradient(&pairs[r.start * batch..r.end * batch], source, rows, sub);
        // db[o] = Σₙ δ[n][o] in order from 0: the bias gradient kernel's sums, lane by lane.
        let mut max_db = 0;
        for (j, v) in bias.iter_mut().enumerate() {
            let mut s = 0.0f32;
            for n in 0..batch {
                s += delta[n * outputs + r.start + j];
            }
            *v = s;
            max_db = max_db.max(abs_bits(s));
        }
        report.max = [abs_bits(max_dw), max_db];
        if squares {
            report.squares = [clip::sum_squares(rows), clip::sum_squares(bias)];
        }
    });
    let [max_dw, max_db] = max_of(&reports[..chunks]);
    if !(max_dw.is_finite() && max_db.is_finite()) {
        return Err(Error::NonFiniteResult);
    }
    let mut sums = [0.0; 2];
    for r in &reports[..chunks] {
        sums[0] += r.squares[0];
        sums[1] += r.squares[1];
    }
    Ok((totals, Summary { max: [mw, mg, max_dw, max_db], squares: sums }))
}

/// As `crate::step::gradients_pass`.
pub fn gradients_pass(team: &mut Team, input: &Input, layer: &Layer, work: &mut Work) -> Result<Totals, Error> {
    gradients_and_summary(team, input, layer, work, false).map(|(t, _)| t)
}

/// As `crate::step::step`: the gradients, clipping, then the updates, checked before written
/// unless a bound proves them finite.
pub fn step(
    team: &mut Team,
    input: &Input,
    layer: &mut Layer,
    work: &mut Work,
    opt: &mut Optimizer,
) -> Result<Totals, Error> {
    check_optimizer(input.shape, opt)?;
    let (totals, summary) = gradients_and_summary(team, input, layer, work, opt.max_grad_norm != 0.0)?;
    let (Some(dw), Some(db)) = (work.dw.as_deref_mut(), work.db.as_deref_mut()) else {
        return Err(Error::InvalidArgs);
    };
    let coef = clip_coefficient(&summary.squares, &opt.rules, opt.max_grad_norm)?;
    let Optimizer { rules, bufs, exp_avg, exp_avg_sq, .. } = opt;
    let rules = &*rules;
    let max_b = layer.b.iter().fold(0, |m, &v| m.max(abs_bits(v)));
    let [mw, mg, mdw, mdb] = summary.max;
    let bounds = [(mw, mdw), (mg, mdw), (f32::from_bits(max_b), mdb)];
    let proven = (0..3).all(|k| plain_sgd_finite(&rules[k], bounds[k].0, bounds[k].1));
    let n = input.shape.w_len();
    let size = chunk_size(n, MIN_CHUNK_FLOATS, CHUNKS, 16);
    let chunks = n.div_ceil(size).max(1);
    let parts = |v: &mut Option<&mut [f32]>| v.as_deref_mut().map(Parts::new);
    let bufs = [parts(&mut bufs[0]), parts(&mut bufs[1]), parts(&mut bufs[2])];
    let ms = [parts(&mut exp_avg[0]), parts(&mut exp_avg[1]), parts(&mut exp_avg[2])];
    let vs = [parts(&mut exp_avg_sq[0]), parts(&mut exp_avg_sq[1]), parts(&mut exp_avg_sq[2])];
    let thetas = [Parts::new(layer.w), Parts::new(layer.g), Parts::new(layer.b)];
    let (dwp, dbp) = (Parts::new(dw), Parts::new(db));
    let outputs = input.shape.outputs;
    let passes: &[bool] = if proven { &[true] } else { &[false, true] };
    for (pass, &write) in passes.iter().enumerate() {
        let reports = phase(team, chunks, &|k, report| {
            let r = chunk(k, size, n);
            // SAFETY: chunk k alone touches elements `r` of w, g, dw and their state, and
            // chunk 0 alone b, db and theirs.
            unsafe {
                let grad = dwp.part(r.clone());
                if pass == 0 && coef < 1.0 {
                    clip::scale(grad, coef);
                }
                let mut ok = true;
                for p in 0..2 {
                    ok &= update(thetas[p], grad, bufs[p], ms[p], vs[p], &rules[p], r.clone(), write);
                }
                if k == 0 {
                    let bias = dbp.part(0..outputs);
                    if pass == 0 && coef < 1.0 {
                        clip::scale(bias, coef);
                    }
                    ok &= update(thetas[2], bias, bufs[2], ms[2], vs[2], &rules[2], 0..outputs, write);
                }
                report.flag = !ok;
            }
        });
        if reports[..chunks].iter().any(|r| r.flag) {
            // Only a checking pass can get here: the writing pass computes the same values, and
            // a proven one only finite ones.
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

/// As `crate::step`: whether `rule` provably writes only finite values, without running it.
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

/// The clipping coefficient (`crate::clip`) from the gradients' sums of squares; 1 when
/// clipping is off.
fn clip_coefficient(squares: &[f64; 2], rules: &[Rule; 3], max_norm: f32) -> Result<f32, Error> {
    if max_norm == 0.0 {
        return Ok(1.0);
    }
    let updated = rules.map(|r| r.kind != RuleKind::Frozen);
    let shared = updated[0] as u32 + updated[1] as u32;
    let mut sq = 0.0;
    if shared > 0 {
        sq += squares[0] * shared as f64;
    }
    if updated[2] {
        sq += squares[1];
    }
    clip::coefficient(sq.sqrt(), max_norm).ok_or(Error::NonFiniteResult)
}
