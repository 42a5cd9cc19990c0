//! Validation of a decoded args block: every region the call will touch, checked and noted,
//! and the records it points at (rules, adapt) decoded. Nothing here reads a float or writes
//! anything; what it returns (`Plan`) is all `dispatch` needs.

use super::memory::{Access, Regions, Span};
use super::Export;
use crate::abi::{AdaptRecord, Args, Ptr, Results, RuleRecord};
use crate::adapt::{Adapt, AdaptWork};
use crate::objective::LossCoefficients;
use crate::pack::pack_len;
use crate::rule::{Rule, RuleKind};
use crate::shape::Shape;
use crate::status::Error;
use crate::step::{Layer, Optimizer, Work};

/// A call's regions, checked (in bounds, aligned, a written one overlapping nothing) and
/// decoded: everything the drivers get.
pub struct Plan {
    pub shape: Shape,
    pub coefficients: LossCoefficients,
    /// Semi-supervised rows: how many, from the first, are labelled.
    pub labelled: Option<usize>,
    x: Span,
    targets: Option<Span>,
    w: Span,
    g: Span,
    b: Span,
    pack: Span,
    z: Span,
    d: Span,
    delta: Option<Span>,
    unit_entropy: Option<Span>,
    unit_loss: Option<Span>,
    dw: Option<Span>,
    db: Option<Span>,
    /// Step only.
    optimizer: Option<OptimizerPlan>,
    /// Gradients and step, when the args block points at an adapt record.
    adapt: Option<AdaptPlan>,
    /// Where the results go (objective, gradients and step).
    pub results: Option<Ptr>,
}

struct OptimizerPlan {
    rules: [Rule; 3],
    bufs: [Option<Span>; 3],
    exp_avg: [Option<Span>; 3],
    exp_avg_sq: [Option<Span>; 3],
    max_grad_norm: f32,
}

struct AdaptPlan {
    cfg: Adapt,
    sample_weights: Span,
    positive: Span,
    mean: Span,
    /// With the diversity term (else empty).
    prior: Option<Span>,
    marginal: Option<Span>,
    running: Option<Span>,
}

/// Checks what `export` will touch of the args block `args` (a copy of the one at `at`).
pub fn validate(at: Ptr, args: &Args, export: Export) -> Result<Plan, Error> {
    let shape = shape_of(args)?;
    let mut regions = Regions::new();
    regions.record::<Args>(at, Access::Read)?;
    let mut plan = layer(args, shape, &mut regions)?;
    if export >= Export::Objective {
        objective(args, shape, export, &mut regions, &mut plan)?;
    }
    if export >= Export::Gradients {
        plan.dw = Some(regions.floats(args.dw, shape.w_len(), Access::Write)?);
        plan.db = Some(regions.floats(args.db, shape.outputs, Access::Write)?);
        if args.adapt != 0 {
            plan.adapt = Some(adapt(args, shape, &plan, &mut regions)?);
        }
    }
    if export == Export::Step {
        plan.optimizer = Some(optimizer(args, shape, &mut regions)?);
    }
    regions.check_disjoint()?;
    Ok(plan)
}

/// The sizes; every float count must fit in memory's byte range (usize is 32 bits on wasm32).
fn shape_of(a: &Args) -> Result<Shape, Error> {
    let shape = Shape::new(a.batch as usize, a.inputs as usize, a.outputs as usize);
    let fits = |m: usize, n: usize| m.checked_mul(n).and_then(|n| n.checked_mul(4)).is_some();
    if fits(shape.batch, shape.inputs) && fits(shape.outputs, shape.inputs) && fits(shape.batch, shape.outputs) {
        Ok(shape)
    } else {
        Err(Error::InvalidArgs)
    }
}

/// What every export touches: `x`, the parameters, the packing scratch, `z` and `d`.
fn layer(a: &Args, shape: Shape, r: &mut Regions) -> Result<Plan, Error> {
    let (wn, zn) = (shape.w_len(), shape.z_len());
    let x = r.floats(a.x, shape.x_len(), Access::Read)?;
    // w, g, b count as written in every export: the drivers take them as `&mut` slices (`Layer`),
    // and a `&mut` overlapping another live slice would be undefined behaviour even unwritten.
    let (w, g) = (r.floats(a.w, wn, Access::Write)?, r.floats(a.g, wn, Access::Write)?);
    let b = r.floats(a.b, shape.outputs, Access::Write)?;
    // Packing scratch: at least `pack_floats` floats; only that much is used (and checked).
    let pack_need = pack_len(shape).ok_or(Error::InvalidArgs)?;
    if (a.pack_len as usize) < pack_need {
        return Err(Error::InvalidArgs);
    }
    let pack = r.floats(a.pack, pack_need, Access::Write)?;
    let (z, d) = (r.floats(a.z, zn, Access::Write)?, r.floats(a.d, zn, Access::Write)?);
    let labelled = match a.semi_supervised {
        0 => None,
        1 if a.labelled_rows as usize <= shape.batch => Some(a.labelled_rows as usize),
        _ => return Err(Error::InvalidArgs),
    };
    Ok(Plan {
        shape,
        coefficients: LossCoefficients {
            entropy: a.entropy_weight,
            cross_entropy: a.cross_entropy_weight,
            scale: a.scale,
        },
        labelled,
        x,
        targets: None,
        w,
        g,
        b,
        pack,
        z,
        d,
        delta: None,
        unit_entropy: None,
        unit_loss: None,
        dw: None,
        db: None,
        optimizer: None,
        adapt: None,
        results: None,
    })
}

/// The objective's inputs and outputs (objective, gradients, step): the targets when `αC ≠ 0`
/// (the labelled rows' only, with semi-supervised rows), `delta` (required from gradients on),
/// the optional per-unit outputs, the results.
fn objective(a: &Args, shape: Shape, export: Export, r: &mut Regions, plan: &mut Plan) -> Result<(), Error> {
    let zn = shape.z_len();
    if plan.coefficients.cross_entropy != 0.0 {
        let rows = plan.labelled.unwrap_or(shape.batch);
        plan.targets = Some(r.floats(a.targets, rows * shape.outputs, Access::Read)?);
    }
    plan.delta = if export >= Export::Gradients {
        Some(r.floats(a.delta, zn, Access::Write)?)
    } else {
        r.optional_floats(a.delta, zn, Access::Write)?
    };
    plan.unit_entropy = r.optional_floats(a.unit_entropy, zn, Access::Write)?;
    plan.unit_loss = r.optional_floats(a.unit_loss, zn, Access::Write)?;
    r.record::<Results>(a.results, Access::Write)?;
    plan.results = Some(a.results);
    Ok(())
}

/// The adapt record (gradients and step): valid settings, the per-unit outputs it needs, and
/// its three written arrays.
fn adapt(a: &Args, shape: Shape, plan: &Plan, r: &mut Regions) -> Result<AdaptPlan, Error> {
    let record: AdaptRecord = r.read(a.adapt)?;
    let cfg = Adapt::decode(&record).ok_or(Error::InvalidArgs)?;
    if plan.unit_entropy.is_none() || plan.unit_loss.is_none() {
        return Err(Error::InvalidArgs);
    }
    let o = shape.outputs;
    let diversity = cfg.diversity != 0.0;
    Ok(AdaptPlan {
        cfg,
        sample_weights: r.floats(record.sample_weights, shape.batch, Access::Write)?,
        positive: r.floats(record.positive, o, Access::Write)?,
        mean: r.floats(record.mean, o, Access::Write)?,
        prior: if diversity { Some(r.floats(record.prior, o, Access::Read)?) } else { None },
        marginal: if diversity { Some(r.floats(record.marginal, o, Access::Read)?) } else { None },
        running: if diversity { Some(r.floats(record.running, o, Access::Write)?) } else { None },
    })
}

/// The three rule records (step): known kinds, the buffers each needs, a valid clipping norm.
fn optimizer(a: &Args, shape: Shape, r: &mut Regions) -> Result<OptimizerPlan, Error> {
    let records: [RuleRecord; 3] = r.read(a.rules)?;
    let lens = [shape.w_len(), shape.w_len(), shape.outputs];
    let mut plan = OptimizerPlan {
        rules: [Rule::FROZEN; 3],
        bufs: [None; 3],
        exp_avg: [None; 3],
        exp_avg_sq: [None; 3],
        max_grad_norm: a.max_grad_norm,
    };
    for (k, record) in records.iter().enumerate() {
        let rule = Rule::decode(record).ok_or(Error::InvalidArgs)?;
        if rule.uses_buffer() {
            plan.bufs[k] = Some(r.floats(record.buf, lens[k], Access::Write)?);
        }
        if rule.kind == RuleKind::Adam {
            plan.exp_avg[k] = Some(r.floats(record.exp_avg, lens[k], Access::Write)?);
            plan.exp_avg_sq[k] = Some(r.floats(record.exp_avg_sq, lens[k], Access::Write)?);
        }
        plan.rules[k] = rule;
    }
    if !(plan.max_grad_norm >= 0.0 && plan.max_grad_norm.is_finite()) {
        return Err(Error::InvalidArgs);
    }
    Ok(plan)
}

impl Plan {
    /// The drivers' slices.
    ///
    /// # Safety
    /// `validate` returned this plan (every span checked, the written ones overlapping
    /// nothing), and nothing else references this memory while the slices live (JavaScript is
    /// blocked in this call).
    pub unsafe fn slices<'a>(&self) -> (&'a [f32], Option<&'a [f32]>, Layer<'a>, Work<'a>) {
        let opt = |s: Option<Span>| s.map(|s| unsafe { s.slice_mut() });
        // SAFETY (every span below): per the function contract; the mutable ones were noted
        // with `Access::Write`.
        unsafe {
            let layer = Layer { w: self.w.slice_mut(), g: self.g.slice_mut(), b: self.b.slice_mut() };
            let work = Work {
                pack: self.pack.slice_mut(),
                z: self.z.slice_mut(),
                d: self.d.slice_mut(),
                delta: opt(self.delta),
                unit_entropy: opt(self.unit_entropy),
                unit_loss: opt(self.unit_loss),
                dw: opt(self.dw),
                db: opt(self.db),
                adapt: self.adapt.as_ref().map(|a| AdaptWork {
                    cfg: a.cfg,
                    sample_weights: a.sample_weights.slice_mut(),
                    positive: a.positive.slice_mut(),
                    mean: a.mean.slice_mut(),
                    prior: a.prior.map_or(&[][..], |s| s.slice()),
                    marginal: a.marginal.map_or(&[][..], |s| s.slice()),
                    running: a.running.map_or(&mut [][..], |s| s.slice_mut()),
                    kept: 0,
                    diversity_loss: f64::NAN,
                }),
            };
            (self.x.slice(), self.targets.map(|t| t.slice()), layer, work)
        }
    }

    /// The optimizer (step only).
    ///
    /// # Safety
    /// As for `slices`.
    pub unsafe fn optimizer<'a>(&self) -> Option<Optimizer<'a>> {
        let opt = |s: Option<Span>| s.map(|s| unsafe { s.slice_mut() });
        self.optimizer.as_ref().map(|o| Optimizer {
            rules: o.rules,
            bufs: o.bufs.map(opt),
            exp_avg: o.exp_avg.map(opt),
            exp_avg_sq: o.exp_avg_sq.map(opt),
            max_grad_norm: o.max_grad_norm,
        })
    }
}
