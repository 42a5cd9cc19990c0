//! The wasm exports of `docs/core-abi.md`, and the only place that touches raw memory.
//!
//! Each export decodes the 32-slot args block, validates every region it will touch (non-zero,
//! 4-byte aligned, inside linear memory, no writable region overlapping any other region),
//! builds slices and calls the drivers in `step`. A malformed block returns status 5 instead
//! of being undefined behaviour.

use core::alloc::Layout;
use std::alloc::{alloc_zeroed, dealloc};

use wasm_bindgen::prelude::wasm_bindgen;

use crate::adapt::{Adapt, AdaptWork};
use crate::objective::{Totals, Weights};
use crate::sgd::{Rule, RuleKind};
use crate::shape::Shape;
use crate::status::Error;
use crate::step::{self, rule_kind, Layer, Optimizer, Work};

/// Byte layout of `n` floats: 16-byte aligned, at least 16 bytes (so `allocate(0)` returns a
/// distinct live block too). `None` when the byte count overflows `u32` or `isize`.
fn layout(n_floats: u32) -> Option<Layout> {
    let bytes = n_floats.checked_mul(4)?.max(16);
    Layout::from_size_align(bytes as usize, 16).ok()
}

/// A zero-filled, 16-byte-aligned block of `n_floats` floats; 0 when memory cannot grow.
#[wasm_bindgen]
pub fn allocate(n_floats: u32) -> u32 {
    match layout(n_floats) {
        // SAFETY: the layout has a non-zero size; a null result (memory cannot grow) is
        // returned as 0 instead of aborting.
        Some(l) => unsafe { alloc_zeroed(l) as usize as u32 },
        None => 0,
    }
}

/// Frees a block from `allocate(n_floats)`. `ptr = 0` is ignored.
#[wasm_bindgen]
pub fn release(ptr: u32, n_floats: u32) {
    if ptr == 0 {
        return;
    }
    if let Some(l) = layout(n_floats) {
        // SAFETY: by the ABI, `ptr` came from `allocate(n_floats)`, which used this same layout,
        // and is released once.
        unsafe { dealloc(ptr as usize as *mut u8, l) }
    }
}

/// Floats of packing scratch (args slots 20–21) a call with these sizes needs; `u32::MAX` when
/// that does not fit in `u32` (no such call can succeed).
#[wasm_bindgen]
pub fn pack_floats(batch: u32, inputs: u32, outputs: u32) -> u32 {
    let shape = Shape::new(batch as usize, inputs as usize, outputs as usize);
    crate::pack::pack_len(shape).and_then(|n| u32::try_from(n).ok()).unwrap_or(u32::MAX)
}

/// 1 when the kernels were compiled with `simd128`.
#[wasm_bindgen]
pub fn simd() -> u32 {
    crate::SIMD as u32
}

#[wasm_bindgen(js_name = forward)]
pub fn forward_export(args: u32) -> u32 {
    run(args, Export::Forward)
}

#[wasm_bindgen(js_name = entropy)]
pub fn entropy_export(args: u32) -> u32 {
    run(args, Export::Entropy)
}

#[wasm_bindgen(js_name = gradients)]
pub fn gradients_export(args: u32) -> u32 {
    run(args, Export::Gradients)
}

#[wasm_bindgen(js_name = step)]
pub fn step_export(args: u32) -> u32 {
    run(args, Export::Step)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Export {
    Forward,
    Entropy,
    Gradients,
    Step,
}

const ARGS_BYTES: u32 = 32 * 4;
const RULE_BYTES: u32 = 16 * 4;
const ADAPT_BYTES: u32 = 16 * 4;

mod slot {
    pub const BATCH: usize = 0;
    pub const INPUTS: usize = 1;
    pub const OUTPUTS: usize = 2;
    pub const X: usize = 3;
    pub const TARGETS: usize = 4;
    pub const W: usize = 5;
    pub const G: usize = 6;
    pub const B: usize = 7;
    pub const Z: usize = 9;
    pub const D: usize = 10;
    pub const DELTA: usize = 11;
    pub const UNITS: usize = 12;
    pub const DW: usize = 13;
    pub const DB: usize = 14;
    pub const ENTROPY_WEIGHT: usize = 15;
    pub const CROSS_ENTROPY_WEIGHT: usize = 16;
    pub const SCALE: usize = 17;
    pub const RULES: usize = 18;
    pub const UNIT_LOSS: usize = 19;
    pub const PACK: usize = 20;
    pub const PACK_LEN: usize = 21;
    pub const MAX_GRAD_NORM: usize = 22;
    pub const ADAPT: usize = 23;
    pub const LOSS: usize = 24;
    pub const ENTROPY: usize = 26;
    // In a rule record:
    pub const KIND: usize = 0;
    pub const LR: usize = 1;
    pub const WEIGHT_DECAY: usize = 2;
    pub const MOMENTUM: usize = 3;
    pub const DAMPENING: usize = 4;
    pub const NESTEROV: usize = 5;
    pub const BUF: usize = 6;
    pub const BUF_READY: usize = 7;
    pub const ONE_MINUS_BETA1: usize = 8;
    pub const ONE_MINUS_BETA2: usize = 9;
    pub const EPS: usize = 10;
    pub const EXP_AVG: usize = 11;
    pub const EXP_AVG_SQ: usize = 12;
    pub const STEP: usize = 13;
    // In the adapt record:
    pub const FLAGS: usize = 0;
    pub const MAX_ENTROPY: usize = 1;
    pub const DIVERSITY: usize = 2;
    pub const SAMPLE_WEIGHTS: usize = 3;
    pub const POSITIVE: usize = 4;
    pub const MEAN: usize = 5;
    pub const KEPT: usize = 6;
    pub const DIVERSITY_LOSS: usize = 8;
}

/// Bytes of linear memory.
fn memory_bytes() -> u64 {
    core::arch::wasm32::memory_size::<0>() as u64 * 65536
}

/// A validated block of 4-byte slots at a non-zero, aligned offset inside memory.
#[derive(Clone, Copy)]
struct Block(u32);

impl Block {
    fn new(ptr: u32, bytes: u32, align: u32) -> Result<Block, Error> {
        if ptr == 0 || !ptr.is_multiple_of(align) || ptr as u64 + bytes as u64 > memory_bytes() {
            return Err(Error::InvalidArgs);
        }
        Ok(Block(ptr))
    }
    fn u32(self, slot: usize) -> u32 {
        // SAFETY: `new` checked the block lies inside linear memory and is 4-byte aligned;
        // callers only pass slots inside the block (< 32 for args, < 16 for a rule record).
        unsafe { (self.0 as usize as *const u32).add(slot).read() }
    }
    fn f32(self, slot: usize) -> f32 {
        f32::from_bits(self.u32(slot))
    }
    fn set_u32(self, slot: usize, v: u32) {
        // SAFETY: as for `u32`; no Rust reference to the block is live while we write.
        unsafe { (self.0 as usize as *mut u32).add(slot).write(v) }
    }
    fn set_f64(self, slot: usize, v: f64) {
        // SAFETY: as for `u32`; slot and slot + 1 are inside the block. `write_unaligned`
        // because the block is only required to be 4-byte aligned here.
        unsafe { (self.0 as usize as *mut u32).add(slot).cast::<f64>().write_unaligned(v) }
    }
}

/// A float region `[ptr, ptr + 4·len)` of linear memory.
#[derive(Clone, Copy)]
struct Region {
    start: u64,
    end: u64,
    writable: bool,
}

/// At most: the args block, 13 arrays (x … db), the rule records, 2 buffers per rule (Adam's
/// moments) and the adapt record with its 3 arrays: 25. A region past the list would go
/// unchecked, so there is one spare.
const MAX_REGIONS: usize = 26;

/// The regions one call touches; writable ones may not overlap any other.
struct Regions {
    list: [Region; MAX_REGIONS],
    n: usize,
    memory: u64,
}

impl Regions {
    fn new() -> Self {
        Regions { list: [Region { start: 0, end: 0, writable: false }; MAX_REGIONS], n: 0, memory: memory_bytes() }
    }

    fn add_bytes(&mut self, ptr: u32, bytes: u64, writable: bool) {
        if bytes > 0 && self.n < self.list.len() {
            self.list[self.n] = Region { start: ptr as u64, end: ptr as u64 + bytes, writable };
            self.n += 1;
        }
    }

    /// Checks `len` floats at `ptr`: with `len = 0` anything goes; otherwise `ptr` is non-zero,
    /// 4-byte aligned and the floats lie inside memory.
    fn add(&mut self, ptr: u32, len: usize, writable: bool) -> Result<Span, Error> {
        if len == 0 {
            return Ok(Span { ptr: 0, len: 0 });
        }
        let bytes = len as u64 * 4;
        if ptr == 0 || !ptr.is_multiple_of(4) || ptr as u64 + bytes > self.memory {
            return Err(Error::InvalidArgs);
        }
        self.add_bytes(ptr, bytes, writable);
        Ok(Span { ptr, len })
    }

    /// An optional region: `ptr = 0` means absent.
    fn add_opt(&mut self, ptr: u32, len: usize, writable: bool) -> Result<Option<Span>, Error> {
        if ptr == 0 {
            Ok(None)
        } else {
            self.add(ptr, len, writable).map(Some)
        }
    }

    fn check_disjoint(&self) -> Result<(), Error> {
        let l = &self.list[..self.n];
        for (i, a) in l.iter().enumerate() {
            for c in &l[i + 1..] {
                if (a.writable || c.writable) && a.start < c.end && c.start < a.end {
                    return Err(Error::InvalidArgs);
                }
            }
        }
        Ok(())
    }
}

/// Validated floats: either empty or inside memory, aligned, and not aliased by a writable
/// region of the same call.
#[derive(Clone, Copy)]
struct Span {
    ptr: u32,
    len: usize,
}

impl Span {
    /// # Safety
    /// The span came from `Regions::add` whose `check_disjoint` passed, and no other reference
    /// to these floats is live for `'a`.
    unsafe fn slice<'a>(self) -> &'a [f32] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: per the function contract the floats are in bounds, aligned and non-null.
        unsafe { core::slice::from_raw_parts(self.ptr as usize as *const f32, self.len) }
    }
    /// # Safety
    /// As for `slice`, and the span was added as writable (so no other region overlaps it).
    unsafe fn slice_mut<'a>(self) -> &'a mut [f32] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: per the function contract the floats are in bounds, aligned, non-null and
        // overlap no other region of this call.
        unsafe { core::slice::from_raw_parts_mut(self.ptr as usize as *mut f32, self.len) }
    }
}

fn run(args: u32, export: Export) -> u32 {
    match call(args, export) {
        Ok(()) => 0,
        Err(e) => e.code(),
    }
}

fn dims(block: Block) -> Result<Shape, Error> {
    let shape = Shape::new(
        block.u32(slot::BATCH) as usize,
        block.u32(slot::INPUTS) as usize,
        block.u32(slot::OUTPUTS) as usize,
    );
    // Every float count must fit in memory's byte range; usize is 32 bits on wasm32.
    let fits = |a: usize, c: usize| a.checked_mul(c).and_then(|n| n.checked_mul(4)).is_some();
    if fits(shape.batch, shape.inputs) && fits(shape.outputs, shape.inputs) && fits(shape.batch, shape.outputs) {
        Ok(shape)
    } else {
        Err(Error::InvalidArgs)
    }
}

fn call(args: u32, export: Export) -> Result<(), Error> {
    let block = Block::new(args, ARGS_BYTES, 8)?;
    let shape = dims(block)?;
    let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
    let weights = Weights {
        entropy: block.f32(slot::ENTROPY_WEIGHT),
        cross_entropy: block.f32(slot::CROSS_ENTROPY_WEIGHT),
        scale: block.f32(slot::SCALE),
    };
    let objective = export >= Export::Entropy;
    let grads = export >= Export::Gradients;

    let mut regions = Regions::new();
    regions.add_bytes(args, ARGS_BYTES as u64, true);
    let x = regions.add(block.u32(slot::X), xn, false)?;
    let targets = if objective && weights.cross_entropy != 0.0 {
        Some(regions.add(block.u32(slot::TARGETS), zn, false)?)
    } else {
        None
    };
    // w, g, b count as written in every export: the drivers take them as `&mut` slices (`Layer`),
    // and a `&mut` overlapping another live slice would be undefined behaviour even unwritten.
    let w = regions.add(block.u32(slot::W), wn, true)?;
    let g = regions.add(block.u32(slot::G), wn, true)?;
    let b = regions.add(block.u32(slot::B), on, true)?;
    // Packing scratch: at least `pack_floats` floats; only that much is used (and checked).
    let pack_need = crate::pack::pack_len(shape).ok_or(Error::InvalidArgs)?;
    if (block.u32(slot::PACK_LEN) as usize) < pack_need {
        return Err(Error::InvalidArgs);
    }
    let pack = regions.add(block.u32(slot::PACK), pack_need, true)?;
    let z = regions.add(block.u32(slot::Z), zn, true)?;
    let d = regions.add(block.u32(slot::D), zn, true)?;
    let (mut delta, mut units, mut unit_loss, mut dw, mut db) = (None, None, None, None, None);
    if objective {
        delta = if grads {
            Some(regions.add(block.u32(slot::DELTA), zn, true)?)
        } else {
            regions.add_opt(block.u32(slot::DELTA), zn, true)?
        };
        units = regions.add_opt(block.u32(slot::UNITS), zn, true)?;
        unit_loss = regions.add_opt(block.u32(slot::UNIT_LOSS), zn, true)?;
    }
    if grads {
        dw = Some(regions.add(block.u32(slot::DW), wn, true)?);
        db = Some(regions.add(block.u32(slot::DB), on, true)?);
    }
    let mut rules = [Rule::FROZEN; 3];
    let mut bufs: [Option<Span>; 3] = [None; 3];
    let mut moments: [Option<(Span, Span)>; 3] = [None; 3];
    let mut max_grad_norm = 0.0;
    let mut records = None;
    if export == Export::Step {
        let rp = block.u32(slot::RULES);
        let rb = Block::new(rp, 3 * RULE_BYTES, 4)?;
        regions.add_bytes(rp, 3 * RULE_BYTES as u64, true);
        let lens = [wn, wn, on];
        for k in 0..3 {
            let r = Block(rb.0 + k as u32 * RULE_BYTES);
            rules[k] = Rule {
                kind: rule_kind(r.u32(slot::KIND))?,
                lr: r.f32(slot::LR),
                weight_decay: r.f32(slot::WEIGHT_DECAY),
                momentum: r.f32(slot::MOMENTUM),
                dampening: r.f32(slot::DAMPENING),
                nesterov: r.u32(slot::NESTEROV) != 0,
                buf_ready: r.u32(slot::BUF_READY) != 0,
                one_minus_beta1: r.f32(slot::ONE_MINUS_BETA1),
                one_minus_beta2: r.f32(slot::ONE_MINUS_BETA2),
                eps: r.f32(slot::EPS),
                step: r.u32(slot::STEP),
            };
            if rules[k].uses_buffer() {
                bufs[k] = Some(regions.add(r.u32(slot::BUF), lens[k], true)?);
            }
            if rules[k].kind == RuleKind::Adam {
                let m = regions.add(r.u32(slot::EXP_AVG), lens[k], true)?;
                let v = regions.add(r.u32(slot::EXP_AVG_SQ), lens[k], true)?;
                moments[k] = Some((m, v));
            }
        }
        max_grad_norm = block.f32(slot::MAX_GRAD_NORM);
        // Part of the block's validity: status 5 before anything is computed or written.
        if !(max_grad_norm >= 0.0 && max_grad_norm.is_finite()) {
            return Err(Error::InvalidArgs);
        }
        records = Some(rb);
    }
    // The adaptation pass (gradients and step only): slot 23 points at an adapt record or is 0.
    let mut adapt = None;
    if grads && block.u32(slot::ADAPT) != 0 {
        let ap = block.u32(slot::ADAPT);
        let ab = Block::new(ap, ADAPT_BYTES, 8)?;
        regions.add_bytes(ap, ADAPT_BYTES as u64, true);
        let cfg = Adapt::from_record(ab.u32(slot::FLAGS), ab.f32(slot::MAX_ENTROPY), ab.f32(slot::DIVERSITY))
            .ok_or(Error::InvalidArgs)?;
        if units.is_none() || unit_loss.is_none() {
            return Err(Error::InvalidArgs);
        }
        let weights = regions.add(ab.u32(slot::SAMPLE_WEIGHTS), shape.batch, true)?;
        let positive = regions.add(ab.u32(slot::POSITIVE), on, true)?;
        let mean = regions.add(ab.u32(slot::MEAN), on, true)?;
        adapt = Some((ab, cfg, weights, positive, mean));
    }
    regions.check_disjoint()?;

    // SAFETY: every span below passed `Regions::add` and `check_disjoint` above: each is
    // empty or in bounds, aligned and non-null, and writable spans overlap nothing else. JS is
    // single-threaded and blocked in this call, so no other reference exists while they live.
    let (x, targets) = unsafe { (x.slice(), targets.map(|t| t.slice())) };
    // SAFETY: as above; w, g, b are only written by `step`, which registered them writable.
    let mut layer = unsafe { Layer { w: w.slice_mut(), g: g.slice_mut(), b: b.slice_mut() } };
    // SAFETY: as above; all these spans were registered writable.
    let mut work = unsafe {
        Work {
            pack: pack.slice_mut(),
            z: z.slice_mut(),
            d: d.slice_mut(),
            delta: delta.map(|s| s.slice_mut()),
            units: units.map(|s| s.slice_mut()),
            unit_loss: unit_loss.map(|s| s.slice_mut()),
            dw: dw.map(|s| s.slice_mut()),
            db: db.map(|s| s.slice_mut()),
            adapt: adapt.map(|(_, cfg, weights, positive, mean)| AdaptWork {
                cfg,
                weights: weights.slice_mut(),
                positive: positive.slice_mut(),
                mean: mean.slice_mut(),
                kept: 0,
                diversity_loss: f64::NAN,
            }),
        }
    };

    let result: Result<Totals, Error> = match export {
        Export::Forward => return forward_driver(shape, x, &layer, &mut work),
        Export::Entropy => step::entropy_pass(shape, x, targets, &weights, &layer, &mut work),
        Export::Gradients => step::gradients_pass(shape, x, targets, &weights, &layer, &mut work),
        Export::Step => {
            // SAFETY: the buffers were registered writable above.
            let bufs = unsafe { bufs.map(|s| s.map(|s| s.slice_mut())) };
            // SAFETY: Adam's moments were registered writable above.
            let exp_avg = unsafe { moments.map(|s| s.map(|(m, _)| m.slice_mut())) };
            // SAFETY: as above.
            let exp_avg_sq = unsafe { moments.map(|s| s.map(|(_, v)| v.slice_mut())) };
            let mut opt = Optimizer { rules, bufs, exp_avg, exp_avg_sq, max_grad_norm };
            let r = step_driver(shape, x, targets, &weights, &mut layer, &mut work, &mut opt);
            if r.is_ok() {
                if let Some(rb) = records {
                    for (k, rule) in opt.rules.iter().enumerate() {
                        let record = Block(rb.0 + k as u32 * RULE_BYTES);
                        if rule.buf_ready {
                            record.set_u32(slot::BUF_READY, 1);
                        }
                        if rule.kind == RuleKind::Adam {
                            record.set_u32(slot::STEP, rule.step);
                        }
                    }
                }
            }
            r
        }
    };
    if result == Err(Error::InvalidArgs) {
        // Status 5 writes nothing, results included (the drivers only get here with a block
        // the checks above let through, but keep the promise whatever they find).
        return Err(Error::InvalidArgs);
    }
    if let (Some((ab, ..)), Some(a)) = (adapt, work.adapt.as_ref()) {
        let ok = result.is_ok();
        ab.set_u32(slot::KEPT, if ok { a.kept } else { 0 });
        ab.set_f64(slot::DIVERSITY_LOSS, if ok { a.diversity_loss } else { f64::NAN });
    }
    let totals = result.unwrap_or(Totals { loss: f64::NAN, entropy: f64::NAN, targets_out_of_range: false });
    block.set_f64(slot::LOSS, totals.loss);
    block.set_f64(slot::ENTROPY, totals.entropy);
    result.map(|_| ())
}

// The drivers stay out of `call`: WebAssembly functions compile on first use, and `call` is
// what every export, and init()'s self-test (a forward pass), compiles first.

#[inline(never)]
fn forward_driver(shape: Shape, x: &[f32], layer: &Layer, work: &mut Work) -> Result<(), Error> {
    step::forward_pass(shape, x, layer, work)
}

#[inline(never)]
fn step_driver(
    shape: Shape,
    x: &[f32],
    targets: Option<&[f32]>,
    weights: &Weights,
    layer: &mut Layer,
    work: &mut Work,
    opt: &mut Optimizer,
) -> Result<Totals, Error> {
    step::step(shape, x, targets, weights, layer, work, opt)
}
