//! Fuzzing of the wasm exports' boundary (issue 7): args blocks with arbitrary shapes, pointers,
//! lengths, overlaps, objective weights and rule records, and batches that grow between calls
//! on the same layout. A stable-Rust harness (no `cargo fuzz`, which needs nightly): a seeded
//! mutation loop run for a bounded time in the test run, longer on demand.
//!
//! The regions live in an arena of fresh pages at the very end of linear memory, grown here
//! before the loop and owned by no allocator, so every region either lies in the arena or
//! reaches past the end of memory, and the loop allocates nothing (memory never grows under it).
//! For every call:
//! * the export returns, without trapping, a status in 0..=5;
//! * status 5 exactly when the block is malformed by an independent reading of
//!   docs/core-abi.md (`expect_valid`), and then not one byte of the arena changed;
//! * otherwise only the regions that export may write changed (and, on a failed step, not the
//!   parameters, buffers or `buf_ready`), the status and every output equal, bit for bit, those
//!   of the Rust drivers run on copies of the inputs, and after status 0 nothing written that a
//!   user sees is NaN or ±∞.
//!
//! Compile-time knobs (read by `option_env!`, so they work under wasm; cargo rebuilds when they
//! change): `ENTROGRAD_FUZZ_SECONDS` (default 4 per build), `ENTROGRAD_FUZZ_SEED`,
//! `ENTROGRAD_FUZZ_TRACE=1` (logs each case number, to find the one that trapped). Long runs:
//! `npm run fuzz -- --seconds 600`.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::needless_range_loop)]

mod common;

use common::Rng;
use core::arch::wasm32::{memory_grow, memory_size};
use entrograd_core::adapt::{Adapt, AdaptWork};
use entrograd_core::bindings::{entropy_export, forward_export, gradients_export, pack_floats, step_export};
use entrograd_core::step;
use entrograd_core::{Error, Layer, Optimizer, Rule, RuleKind, Shape, Weights, Work};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_test::wasm_bindgen_test as test;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn log_number(v: f64);
}

const fn parse_or(s: Option<&str>, default: u64) -> u64 {
    let Some(s) = s else { return default };
    let b = s.as_bytes();
    if b.is_empty() {
        return default;
    }
    let mut v = 0u64;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "ENTROGRAD_FUZZ_*: digits only");
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

const SECONDS: u64 = parse_or(option_env!("ENTROGRAD_FUZZ_SECONDS"), 4);
const SEED: u64 = parse_or(option_env!("ENTROGRAD_FUZZ_SEED"), 0xF022_2026);
const TRACE: bool = parse_or(option_env!("ENTROGRAD_FUZZ_TRACE"), 0) != 0;

const PAGE: u32 = 65536;
const ARENA_PAGES: u32 = 4;
const ARENA_BYTES: u32 = ARENA_PAGES * PAGE;
const ARENA_WORDS: usize = (ARENA_BYTES / 4) as usize;
const ARGS_BYTES: u32 = 128;
const RULES_BYTES: u32 = 192;

// Args slots (docs/core-abi.md).
const BATCH: usize = 0;
const INPUTS: usize = 1;
const OUTPUTS: usize = 2;
const X: usize = 3;
const TARGETS: usize = 4;
const W: usize = 5;
const G: usize = 6;
const B: usize = 7;
const RESERVED_8: usize = 8; // once wsum; not read
const Z: usize = 9;
const D: usize = 10;
const DELTA: usize = 11;
const UNITS: usize = 12;
const DW: usize = 13;
const DB: usize = 14;
const AE: usize = 15;
const AC: usize = 16;
const SCALE: usize = 17;
const RULES: usize = 18;
const UNIT_LOSS: usize = 19;
const PACK: usize = 20;
const PACK_LEN: usize = 21;
const MAX_GRAD_NORM: usize = 22;
const ADAPT: usize = 23;
const ADAPT_BYTES: u32 = 64;
/// The pointer slots, in placement order.
const PTR_SLOTS: [usize; 14] = [X, TARGETS, W, G, B, PACK, Z, D, DELTA, UNITS, DW, DB, RULES, UNIT_LOSS];

fn mem_bytes() -> u64 {
    memory_size::<0>() as u64 * PAGE as u64
}

fn rd(addr: u32) -> u32 {
    // SAFETY: callers only read 4-aligned words inside linear memory (checked by the caller).
    unsafe { (addr as usize as *const u32).read() }
}
fn wr(addr: u32, v: u32) {
    // SAFETY: callers only write 4-aligned words inside the arena, which no allocator owns.
    unsafe { (addr as usize as *mut u32).write(v) }
}
fn rdf(addr: u32) -> f32 {
    f32::from_bits(rd(addr))
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Export {
    Forward,
    Entropy,
    Gradients,
    Step,
}

impl Export {
    fn call(self, args: u32) -> u32 {
        match self {
            Export::Forward => forward_export(args),
            Export::Entropy => entropy_export(args),
            Export::Gradients => gradients_export(args),
            Export::Step => step_export(args),
        }
    }
}

/// A region a call touches: [start, end) in bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Reg {
    start: u64,
    end: u64,
    writable: bool,
}

/// A float region of memory: (start, floats).
type Region = (u32, usize);

/// The regions of a valid block, as `expect_valid` read them from docs/core-abi.md.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    shape: (usize, usize, usize),
    /// Float regions by slot (start, floats); `floats == 0` or absent means untouched.
    x: (u32, usize),
    targets: Option<(u32, usize)>,
    w: (u32, usize),
    g: (u32, usize),
    b: (u32, usize),
    /// The packing scratch: `pack_floats(batch, inputs, outputs)` floats at slot 20.
    pack: (u32, usize),
    z: (u32, usize),
    d: (u32, usize),
    delta: Option<(u32, usize)>,
    units: Option<(u32, usize)>,
    unit_loss: Option<(u32, usize)>,
    dw: Option<(u32, usize)>,
    db: Option<(u32, usize)>,
    rules: u32,
    bufs: [Option<(u32, usize)>; 3],
    /// Adam's moments (exp_avg, exp_avg_sq) per Adam rule.
    moments: [Option<(Region, Region)>; 3],
    /// The adapt record and its weights, positive and mean regions (gradients and step).
    adapt: Option<(u32, Region, Region, Region)>,
}

/// The contract, read independently of `bindings.rs`: `Some(plan)` when the export must accept
/// the block, `None` when it must return 5.
fn expect_valid(args: u32, export: Export) -> Option<Plan> {
    let mem = mem_bytes();
    if args == 0 || !args.is_multiple_of(8) || args as u64 + ARGS_BYTES as u64 > mem {
        return None;
    }
    let slot = |i: usize| rd(args + 4 * i as u32);
    let (b, i, o) = (slot(BATCH) as u64, slot(INPUTS) as u64, slot(OUTPUTS) as u64);
    // Sizes overflow: every float count, in bytes, must fit in 32 bits.
    if [b * i, o * i, b * o].iter().any(|&n| n * 4 > u32::MAX as u64) {
        return None;
    }
    let (xn, wn, zn, on) = ((b * i) as usize, (o * i) as usize, (b * o) as usize, o as usize);
    let mut regs = [Reg::default(); 32];
    let mut records: [Option<Reg>; 2] = [None; 2];
    let mut n = 0;
    let mut ok = true;
    let mut push = |r: Reg, regs: &mut [Reg; 32]| {
        regs[n] = r;
        n += 1;
    };
    push(Reg { start: args as u64, end: args as u64 + ARGS_BYTES as u64, writable: true }, &mut regs);
    // A float region: empty → untouched (any pointer); else non-zero (unless optional, when 0
    // means absent), 4-aligned, inside memory.
    let mut region =
        |slot_ptr: u32, floats: usize, writable: bool, optional: bool, regs: &mut [Reg; 32]| -> Option<(u32, usize)> {
            if floats == 0 {
                return Some((0, 0));
            }
            if slot_ptr == 0 {
                if !optional {
                    ok = false;
                }
                return None;
            }
            if !slot_ptr.is_multiple_of(4) || slot_ptr as u64 + 4 * floats as u64 > mem {
                ok = false;
                return None;
            }
            push(Reg { start: slot_ptr as u64, end: slot_ptr as u64 + 4 * floats as u64, writable }, regs);
            Some((slot_ptr, floats))
        };
    let objective = export >= Export::Entropy;
    let grads = export >= Export::Gradients;
    let stepping = export == Export::Step;
    let mut plan = Plan { shape: (b as usize, i as usize, o as usize), ..Plan::default() };
    plan.x = region(slot(X), xn, false, false, &mut regs).unwrap_or_default();
    if objective && f32::from_bits(slot(AC)) != 0.0 {
        plan.targets = region(slot(TARGETS), zn, false, false, &mut regs);
    }
    // Parameters count as written in every export (the bindings hold them as `&mut`).
    plan.w = region(slot(W), wn, true, false, &mut regs).unwrap_or_default();
    plan.g = region(slot(G), wn, true, false, &mut regs).unwrap_or_default();
    plan.b = region(slot(B), on, true, false, &mut regs).unwrap_or_default();
    // Packing scratch (slots 20–21), required by every export: `pack_len` at least
    // `pack_floats(batch, inputs, outputs)` (u32::MAX: no such call can succeed); that many
    // floats at `pack` are written scratch.
    let need = pack_floats(b as u32, i as u32, o as u32);
    if need == u32::MAX || slot(PACK_LEN) < need {
        return None;
    }
    plan.pack = region(slot(PACK), need as usize, true, false, &mut regs).unwrap_or_default();
    plan.z = region(slot(Z), zn, true, false, &mut regs).unwrap_or_default();
    plan.d = region(slot(D), zn, true, false, &mut regs).unwrap_or_default();
    if objective {
        plan.delta = region(slot(DELTA), zn, true, !grads, &mut regs);
        plan.units = region(slot(UNITS), zn, true, true, &mut regs);
        plan.unit_loss = region(slot(UNIT_LOSS), zn, true, true, &mut regs);
    }
    if grads {
        plan.dw = region(slot(DW), wn, true, false, &mut regs);
        plan.db = region(slot(DB), on, true, false, &mut regs);
    }
    if stepping {
        let rp = slot(RULES);
        if rp == 0 || rp % 4 != 0 || rp as u64 + RULES_BYTES as u64 > mem {
            return None;
        }
        plan.rules = rp;
        let lens = [wn, wn, on];
        let mut kinds_ok = true;
        let mut bufs = [None; 3];
        let mut moments = [None; 3];
        for k in 0..3 {
            let rec = rp + 64 * k as u32;
            let kind = rd(rec);
            if kind > 2 {
                kinds_ok = false;
            }
            if kind == 1 && rdf(rec + 12) != 0.0 {
                bufs[k] = region(rd(rec + 24), lens[k], true, false, &mut regs);
            }
            if kind == 2 {
                let m = region(rd(rec + 44), lens[k], true, false, &mut regs);
                let v = region(rd(rec + 48), lens[k], true, false, &mut regs);
                if let (Some(m), Some(v)) = (m, v) {
                    moments[k] = Some((m, v));
                }
            }
        }
        plan.bufs = bufs;
        plan.moments = moments;
        // Clipping: 0 (off) or a positive, finite norm.
        let norm = f32::from_bits(slot(MAX_GRAD_NORM));
        if !(norm >= 0.0 && norm.is_finite()) {
            return None;
        }
        records[0] = Some(Reg { start: rp as u64, end: rp as u64 + RULES_BYTES as u64, writable: true });
        if !kinds_ok {
            return None;
        }
    }
    // Test-time adaptation (gradients and step): slot 23 is 0 or an 8-aligned record of 16 slots
    // whose flags (bits 1, 2, 4), E0 and λ (finite) are valid; units and unit_loss must be given;
    // its weights (batch floats), positive and mean (outputs floats) are written regions.
    if grads && slot(ADAPT) != 0 {
        let ap = slot(ADAPT);
        if ap % 8 != 0 || ap as u64 + ADAPT_BYTES as u64 > mem {
            return None;
        }
        records[1] = Some(Reg { start: ap as u64, end: ap as u64 + ADAPT_BYTES as u64, writable: true });
        if rd(ap) & !7 != 0 || !rdf(ap + 4).is_finite() || !rdf(ap + 8).is_finite() {
            return None;
        }
        if slot(UNITS) == 0 || slot(UNIT_LOSS) == 0 {
            return None;
        }
        let weights = region(rd(ap + 12), b as usize, true, false, &mut regs);
        let positive = region(rd(ap + 16), on, true, false, &mut regs);
        let mean = region(rd(ap + 20), on, true, false, &mut regs);
        if let (Some(w), Some(p), Some(m)) = (weights, positive, mean) {
            plan.adapt = Some((ap, w, p, m));
        }
    }
    if !ok {
        return None;
    }
    for r in records.into_iter().flatten() {
        push(r, &mut regs);
    }
    for a in 0..n {
        for c in a + 1..n {
            let (p, q) = (regs[a], regs[c]);
            if (p.writable || q.writable) && p.start < q.end && q.start < p.end {
                return None;
            }
        }
    }
    Some(plan)
}

/// Preallocated copies for the drivers, so the loop never allocates.
struct Mirror {
    bufs: Vec<Vec<f32>>,
}

const M_X: usize = 0;
const M_Y: usize = 1;
const M_W: usize = 2;
const M_G: usize = 3;
const M_B: usize = 4;
const M_PACK: usize = 5;
const M_Z: usize = 6;
const M_D: usize = 7;
const M_DELTA: usize = 8;
const M_UNITS: usize = 9;
const M_UL: usize = 10;
const M_DW: usize = 11;
const M_DB: usize = 12;
const M_BUF: usize = 13; // ..16
const M_EXP_AVG: usize = 16; // ..19
const M_EXP_AVG_SQ: usize = 19; // ..22
const M_SAMPLE_WEIGHTS: usize = 22;
const M_POSITIVE: usize = 23;
const M_MEAN: usize = 24;

impl Mirror {
    fn new() -> Mirror {
        Mirror { bufs: (0..25).map(|_| Vec::with_capacity(ARENA_WORDS)).collect() }
    }
    fn load(&mut self, k: usize, at: (u32, usize)) {
        let v = &mut self.bufs[k];
        v.clear();
        for j in 0..at.1 {
            v.push(rdf(at.0 + 4 * j as u32));
        }
    }
    fn blank(&mut self, k: usize, n: usize) {
        let v = &mut self.bufs[k];
        v.clear();
        v.resize(n, f32::NAN);
    }
}

fn same_bits(a: &[f32], at: (u32, usize)) -> bool {
    a.len() == at.1 && (0..at.1).all(|j| a[j].to_bits() == rd(at.0 + 4 * j as u32))
}

fn all_finite_at(at: (u32, usize)) -> bool {
    (0..at.1).all(|j| rdf(at.0 + 4 * j as u32).is_finite())
}

/// Runs the drivers on copies of what the block points at; returns the status they give and
/// leaves their outputs in the mirror.
/// The drivers' outcome: status, the words the rule records' `buf_ready` and `step` slots must
/// hold, and the adapt record's `kept` and `diversity_loss` (bits).
struct Outcome {
    status: u32,
    ready: [u32; 3],
    steps: [u32; 3],
    kept: u32,
    diversity_loss: u64,
}

fn run_drivers(plan: &Plan, args: u32, export: Export, m: &mut Mirror) -> Outcome {
    let (b, i, o) = plan.shape;
    let shape = Shape::new(b, i, o);
    let (wn, zn) = (shape.w_len(), shape.z_len());
    m.load(M_X, plan.x);
    match plan.targets {
        Some(t) => m.load(M_Y, t),
        None => m.blank(M_Y, 0),
    }
    m.load(M_W, plan.w);
    m.load(M_G, plan.g);
    m.load(M_B, plan.b);
    // The scratch starts as the arena holds it, so parts a call leaves alone compare equal.
    m.load(M_PACK, plan.pack);
    for (k, n) in [(M_Z, zn), (M_D, zn), (M_DELTA, zn), (M_UNITS, zn), (M_UL, zn), (M_DW, wn), (M_DB, o)] {
        m.blank(k, n);
    }
    let rdu = |s: usize| rd(args + 4 * s as u32);
    let weights = Weights {
        entropy: f32::from_bits(rdu(AE)),
        cross_entropy: f32::from_bits(rdu(AC)),
        scale: f32::from_bits(rdu(SCALE)),
    };
    let mut rules = [Rule::FROZEN; 3];
    let mut ready_words = [0u32; 3];
    let mut step_words = [0u32; 3];
    if export == Export::Step {
        for k in 0..3 {
            let rec = plan.rules + 64 * k as u32;
            rules[k] = Rule {
                kind: if rd(rec) == 1 { RuleKind::Sgd } else { RuleKind::Frozen },
                lr: rdf(rec + 4),
                weight_decay: rdf(rec + 8),
                momentum: rdf(rec + 12),
                dampening: rdf(rec + 16),
                nesterov: rd(rec + 20) != 0,
                buf_ready: rd(rec + 28) != 0,
                one_minus_beta1: rdf(rec + 32),
                one_minus_beta2: rdf(rec + 36),
                eps: rdf(rec + 40),
                step: rd(rec + 52),
            };
            if rd(rec) == 2 {
                rules[k].kind = RuleKind::Adam;
            }
            ready_words[k] = rd(rec + 28);
            step_words[k] = rd(rec + 52);
            match plan.bufs[k] {
                Some(at) => m.load(M_BUF + k, at),
                None => m.blank(M_BUF + k, 0),
            }
            match plan.moments[k] {
                Some((a, b)) => {
                    m.load(M_EXP_AVG + k, a);
                    m.load(M_EXP_AVG_SQ + k, b);
                }
                None => {
                    m.blank(M_EXP_AVG + k, 0);
                    m.blank(M_EXP_AVG_SQ + k, 0);
                }
            }
        }
    }
    let cfg = plan.adapt.and_then(|(ap, ..)| Adapt::from_record(rd(ap), rdf(ap + 4), rdf(ap + 8)));
    match plan.adapt {
        Some((_, wts, pos, mn)) => {
            m.blank(M_SAMPLE_WEIGHTS, wts.1);
            m.blank(M_POSITIVE, pos.1);
            m.blank(M_MEAN, mn.1);
        }
        None => {
            for k in [M_SAMPLE_WEIGHTS, M_POSITIVE, M_MEAN] {
                m.blank(k, 0);
            }
        }
    }
    let [x, y, w, g, bb, pack, z, d, delta, units, ul, dw, db, b0, b1, b2, m0, m1, m2, v0, v1, v2, sw, pos, mn] =
        &mut m.bufs[..]
    else {
        unreachable!()
    };
    let targets = plan.targets.map(|_| &y[..]);
    let mut layer = Layer { w, g, b: bb };
    let work_init = Work {
        pack,
        z,
        d,
        delta: (plan.delta.is_some() || export >= Export::Gradients).then_some(&mut delta[..]),
        units: plan.units.is_some().then_some(&mut units[..]),
        unit_loss: plan.unit_loss.is_some().then_some(&mut ul[..]),
        dw: (export >= Export::Gradients).then_some(&mut dw[..]),
        db: (export >= Export::Gradients).then_some(&mut db[..]),
        adapt: cfg.map(|cfg| AdaptWork {
            cfg,
            weights: &mut sw[..],
            positive: &mut pos[..],
            mean: &mut mn[..],
            kept: 0,
            diversity_loss: f64::NAN,
        }),
    };
    let mut work = work_init;
    let code = |r: Result<(), Error>| r.map_or_else(|e| e.code(), |_| 0);
    let status = match export {
        Export::Forward => code(step::forward_pass(shape, x, &layer, &mut work)),
        Export::Entropy => code(step::entropy_pass(shape, x, targets, &weights, &layer, &mut work).map(|_| ())),
        Export::Gradients => code(step::gradients_pass(shape, x, targets, &weights, &layer, &mut work).map(|_| ())),
        Export::Step => {
            let mut opt = Optimizer {
                rules,
                bufs: [
                    plan.bufs[0].map(|_| &mut b0[..]),
                    plan.bufs[1].map(|_| &mut b1[..]),
                    plan.bufs[2].map(|_| &mut b2[..]),
                ],
                exp_avg: [
                    plan.moments[0].map(|_| &mut m0[..]),
                    plan.moments[1].map(|_| &mut m1[..]),
                    plan.moments[2].map(|_| &mut m2[..]),
                ],
                exp_avg_sq: [
                    plan.moments[0].map(|_| &mut v0[..]),
                    plan.moments[1].map(|_| &mut v1[..]),
                    plan.moments[2].map(|_| &mut v2[..]),
                ],
                max_grad_norm: f32::from_bits(rdu(MAX_GRAD_NORM)),
            };
            let r = step::step(shape, x, targets, &weights, &mut layer, &mut work, &mut opt).map(|_| ());
            for k in 0..3 {
                // The export stores 1 in every record whose rule ends up ready, and an Adam
                // rule's new step count.
                if r.is_ok() && opt.rules[k].buf_ready {
                    ready_words[k] = 1;
                }
                if r.is_ok() && opt.rules[k].kind == RuleKind::Adam {
                    step_words[k] = opt.rules[k].step;
                }
            }
            code(r)
        }
    };
    let (kept, diversity_loss) = match work.adapt.as_ref() {
        Some(a) if status == 0 => (a.kept, a.diversity_loss.to_bits()),
        _ => (0, f64::NAN.to_bits()),
    };
    Outcome { status, ready: ready_words, steps: step_words, kept, diversity_loss }
}

/// What one case did, for the closing figures.
#[derive(Default)]
struct Tally {
    cases: u64,
    calls: u64,
    status: [u64; 6],
}

struct Fuzzer {
    arena: u32,
    end: u32,
    snapshot: Vec<u32>,
    mirror: Mirror,
    tally: Tally,
}

fn special(rng: &mut Rng) -> f32 {
    match rng.below(40) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => 0.0,
        4 => -0.0,
        5 => f32::from_bits(1 + rng.below(0x7F_FFFF) as u32),
        6 => rng.sym(1e30),
        7 => f32::MAX,
        8 => 1e-38,
        _ => rng.sym(2.0),
    }
}

fn weight(rng: &mut Rng) -> f32 {
    match rng.below(12) {
        0..=2 => 0.0,
        3..=5 => 1.0,
        6 => special(rng),
        7 => f32::from_bits(rng.next_u64() as u32),
        _ => rng.sym(2.0),
    }
}

impl Fuzzer {
    /// A dimension: mostly small (0 sometimes), sometimes around the tiles, rarely enormous.
    fn dim(&self, rng: &mut Rng) -> u32 {
        match rng.below(40) {
            0 => 0,
            1 => rng.next_u64() as u32,
            2 => 0x8000_0000 >> rng.below(20),
            3 => 15 + rng.below(3) as u32,
            4 => 31 + rng.below(3) as u32,
            5 => 64 + rng.below(200) as u32,
            _ => 1 + rng.below(9) as u32,
        }
    }

    /// A pointer that is wrong in one of the ways the ABI must catch (or happens to be fine).
    fn bad_pointer(&self, rng: &mut Rng, good: u32, others: &[u32]) -> u32 {
        let mem = mem_bytes() as u32;
        let other = others[rng.below(others.len())];
        let p = match rng.below(9) {
            0 => 0,
            1 => good.wrapping_add(1 + rng.below(3) as u32),
            2 => other,
            3 => other.wrapping_add(4 * (1 + rng.below(8) as u32)),
            4 => mem.wrapping_sub(4 * rng.below(12) as u32),
            5 => mem.wrapping_add(4 * rng.below(1 << 20) as u32),
            6 => u32::MAX - rng.below(16) as u32,
            7 => self.arena + 4 * rng.below(ARENA_WORDS) as u32,
            _ => rng.next_u64() as u32 | 0x8000_0000,
        };
        // Never a usable address below the arena: a region there would let a (correct) export
        // write over this test's own stack or data.
        if p != 0 && p < self.arena && p % 4 == 0 {
            0
        } else {
            p
        }
    }

    /// Lays a fresh case out in the arena; returns the args pointer and the export.
    fn layout(&mut self, rng: &mut Rng) -> (u32, Export) {
        let (arena, end) = (self.arena, self.end);
        // Junk everywhere (cheap: a per-case salt mixed with the address), so nothing relies on
        // zeroed memory.
        let salt = rng.next_u64() as u32;
        for a in (arena..end).step_by(4) {
            wr(a, salt ^ a.wrapping_mul(0x9E37_79B1));
        }
        // A third of the cases keep every value finite, so more calls get through to status 0.
        let clean = rng.below(3) == 0;
        let special = |rng: &mut Rng| if clean { rng.sym(2.0) } else { special(rng) };
        let mut at = arena + 8 * rng.below(4) as u32;
        let mut take = |bytes: u64, align: u32, rng: &mut Rng| -> u32 {
            let start = at.next_multiple_of(align) + align * rng.below(3) as u32;
            if start as u64 + bytes > end as u64 {
                // Does not fit: it reaches past the end of memory instead.
                return end.wrapping_sub(4 * rng.below(4) as u32);
            }
            at = start + bytes as u32;
            start
        };
        let args = take(ARGS_BYTES as u64, 8, rng);
        let small = rng.below(3) != 0;
        let (b, i, o) = if small {
            (1 + rng.below(9) as u32, 1 + rng.below(9) as u32, 1 + rng.below(9) as u32)
        } else {
            (self.dim(rng), self.dim(rng), self.dim(rng))
        };
        let (xn, wn, zn, on) = (b as u64 * i as u64, o as u64 * i as u64, b as u64 * o as u64, o as u64);
        let pn = pack_floats(b, i, o) as u64;
        let lens = [xn, zn, wn, wn, on, pn, zn, zn, zn, zn, wn, on, 0, zn];
        let mut ptrs = [0u32; 14];
        for (k, &slot) in PTR_SLOTS.iter().enumerate() {
            ptrs[k] = if slot == RULES {
                take(RULES_BYTES as u64, 4 << rng.below(3), rng)
            } else if lens[k] == 0 && rng.below(2) == 0 {
                0
            } else {
                take(4 * lens[k], 4 << rng.below(3), rng)
            };
        }
        let rules = ptrs[12];
        // Fill the float regions that fit with values (targets mostly in [0, 1]).
        for (k, &slot) in PTR_SLOTS.iter().enumerate() {
            let p = ptrs[k];
            if slot == RULES || p < arena || p as u64 + 4 * lens[k] > end as u64 {
                continue;
            }
            for j in 0..lens[k] as u32 {
                let v = if slot == TARGETS && rng.below(30) != 0 { rng.unit() as f32 } else { special(rng) };
                wr(p + 4 * j, v.to_bits());
            }
        }
        // Momentum buffers, then Adam's moments (exp_avg, then exp_avg_sq, mostly ≥ 0).
        let mut bufs = [0u32; 9];
        for (k, n) in [wn, wn, on, wn, wn, on, wn, wn, on].into_iter().enumerate() {
            bufs[k] = take(4 * n, 4, rng);
            if bufs[k] >= arena && bufs[k] as u64 + 4 * n <= end as u64 {
                for j in 0..n as u32 {
                    let v = special(rng);
                    wr(bufs[k] + 4 * j, if k >= 6 && rng.below(20) != 0 { v.abs() } else { v }.to_bits());
                }
            }
        }
        // Mutations: some pointers made wrong, some optional ones absent.
        let mut all = [0u32; 23];
        all[..14].copy_from_slice(&ptrs);
        all[14..].copy_from_slice(&bufs);
        let others: [u32; 24] = core::array::from_fn(|k| if k < 23 { all[k] } else { args });
        for _ in 0..rng.below(3) {
            if rng.below(2) == 0 {
                let k = rng.below(23);
                all[k] = self.bad_pointer(rng, all[k], &others);
            }
        }
        for k in [8, 9, 13] {
            if rng.below(4) == 0 {
                all[k] = 0;
            }
        }
        let args = if rng.below(40) == 0 { self.bad_pointer(rng, args, &others) } else { args };
        if !(args >= arena && args as u64 + ARGS_BYTES as u64 <= end as u64 && args % 4 == 0) {
            // Nowhere to write the block (the export must still return 5 without reading it).
            return (args, Export::Forward);
        }
        let put = |s: usize, v: u32| wr(args + 4 * s as u32, v);
        put(BATCH, b);
        put(INPUTS, i);
        put(OUTPUTS, o);
        for (k, &slot) in PTR_SLOTS.iter().enumerate() {
            put(slot, all[k]);
        }
        put(AE, weight(rng).to_bits());
        put(AC, weight(rng).to_bits());
        let scale = match rng.below(6) {
            0 => 1.0,
            1 => special(rng),
            _ => 1.0 / b.max(1) as f32,
        };
        put(SCALE, scale.to_bits());
        for s in [RESERVED_8, 28, 29, 30, 31] {
            put(s, rng.next_u64() as u32);
        }
        // pack_len: mostly what pack_floats asks, sometimes more (fine), one short or anything.
        let pack_len = match rng.below(10) {
            0 => (pn as u32).wrapping_sub(1),
            1 => rng.next_u64() as u32,
            2 => (pn as u32).saturating_add(rng.below(64) as u32),
            _ => pn as u32,
        };
        put(PACK_LEN, pack_len);
        // An adapt record in a third of the cases (gradients and step read it); sometimes moved
        // onto another region (where its fields are then written: a well-formed record that
        // overlaps), or made wrong otherwise.
        let adapt = if rng.below(3) == 0 {
            let mut ap = take(ADAPT_BYTES as u64, 8, rng);
            if rng.below(6) == 0 {
                ap = self.bad_pointer(rng, ap, &others);
            }
            if ap >= arena && ap as u64 + ADAPT_BYTES as u64 <= end as u64 && ap % 4 == 0 {
                let flags = match rng.below(10) {
                    0 => rng.next_u64() as u32,
                    1 => 8,
                    _ => rng.below(8) as u32,
                };
                wr(ap, flags);
                let e0 = if rng.below(10) == 0 { special(rng) } else { rng.unit() as f32 * o as f32 };
                wr(ap + 4, e0.to_bits());
                let lambda = match rng.below(6) {
                    0 => special(rng),
                    1 | 2 => 0.0,
                    _ => rng.unit() as f32,
                };
                wr(ap + 8, lambda.to_bits());
                for (k, n) in [(12u32, b as u64), (16, o as u64), (20, o as u64)] {
                    let p = take(4 * n, 4, rng);
                    wr(ap + k, if rng.below(12) == 0 { self.bad_pointer(rng, p, &others) } else { p });
                }
                for s in 6u32..16 {
                    wr(ap + 4 * s, rng.next_u64() as u32);
                }
            }
            ap
        } else {
            0
        };
        put(ADAPT, adapt);
        let norm = match rng.below(12) {
            0..=5 => 0.0,
            6 => -0.0,
            7 => special(rng),
            8 => f32::from_bits(rng.next_u64() as u32),
            _ => rng.unit() as f32 * 4.0,
        };
        put(MAX_GRAD_NORM, norm.to_bits());
        if rules >= arena && rules as u64 + RULES_BYTES as u64 <= end as u64 && rules % 4 == 0 {
            for k in 0..3u32 {
                let rec = rules + 64 * k;
                let kind = match rng.below(14) {
                    0 => 3,
                    1 => rng.next_u64() as u32,
                    2 | 3 => 0,
                    4..=7 => 2,
                    _ => 1,
                };
                wr(rec, kind);
                let lr = if rng.below(10) == 0 { special(rng) } else { rng.unit() as f32 };
                wr(rec + 4, lr.to_bits());
                wr(rec + 8, if rng.below(2) == 0 { 0 } else { (rng.unit() as f32 * 0.1).to_bits() });
                let mu = match rng.below(4) {
                    0 => 0.0,
                    1 => special(rng),
                    _ => rng.unit() as f32,
                };
                wr(rec + 12, mu.to_bits());
                wr(rec + 16, (rng.unit() as f32).to_bits());
                wr(rec + 20, if rng.below(2) == 0 { 0 } else { rng.next_u64() as u32 });
                wr(rec + 24, all[14 + k as usize]);
                wr(rec + 28, if rng.below(2) == 0 { 0 } else { rng.next_u64() as u32 });
                // Adam: 1 − β₁, 1 − β₂, ε, the moments, the step count.
                let q = |rng: &mut Rng, usual: f32| match rng.below(8) {
                    0 => special(rng),
                    1 => rng.unit() as f32,
                    _ => usual,
                };
                wr(rec + 32, q(rng, 0.1).to_bits());
                wr(rec + 36, q(rng, 0.001).to_bits());
                wr(rec + 40, q(rng, 1e-8).to_bits());
                wr(rec + 44, all[17 + k as usize]);
                wr(rec + 48, all[20 + k as usize]);
                let step = match rng.below(6) {
                    0 => u32::MAX - rng.below(2) as u32,
                    1 => rng.next_u64() as u32,
                    _ => rng.below(5) as u32,
                };
                wr(rec + 52, step);
                for s in 14..16 {
                    wr(rec + 4 * s, rng.next_u64() as u32);
                }
            }
        }
        let export = [Export::Forward, Export::Entropy, Export::Gradients, Export::Step][rng.below(4)];
        (args, export)
    }

    /// One call with every check; panics (with the case number) on a violation.
    fn call(&mut self, case: u64, args: u32, export: Export) {
        let (arena, end) = (self.arena, self.end);
        assert_eq!(mem_bytes(), end as u64, "memory grew under the fuzzer (the harness allocated)");
        let plan = expect_valid(args, export);
        for (j, a) in (arena..end).step_by(4).enumerate() {
            self.snapshot[j] = rd(a);
        }
        let driver = plan.map(|p| run_drivers(&p, args, export, &mut self.mirror));
        let status = export.call(args);
        self.tally.calls += 1;
        assert!(status <= 5, "case {case}: {export:?} returned status {status}");
        self.tally.status[status as usize] += 1;
        let changed = |me: &Fuzzer, a: u32| rd(a) != me.snapshot[((a - arena) / 4) as usize];
        let Some(plan) = plan else {
            assert_eq!(status, 5, "case {case}: {export:?} accepted a malformed block (status {status})");
            for a in (arena..end).step_by(4) {
                assert!(!changed(self, a), "case {case}: {export:?} returned 5 but wrote at {a:#x}");
            }
            return;
        };
        let Outcome { status: want, ready: ready_words, steps: step_words, kept, diversity_loss } = driver.unwrap();
        assert!(status != 5, "case {case}: {export:?} rejected a well-formed block");
        assert_eq!(status, want, "case {case}: {export:?} status differs from the drivers'");
        // Writes only where this export may write.
        let ok_step = export == Export::Step && status == 0;
        let mut allowed = [(0u32, 0usize); 32];
        let mut na = 0;
        let mut allow = |r: Option<(u32, usize)>| {
            if let Some(r) = r {
                allowed[na] = r;
                na += 1;
            }
        };
        allow(Some(plan.pack));
        allow(Some(plan.z));
        allow(Some(plan.d));
        if export >= Export::Entropy {
            allow(plan.delta);
            allow(plan.units);
            allow(plan.unit_loss);
            allow(Some((args + 96, 4)));
        }
        allow(plan.dw);
        allow(plan.db);
        if let Some((ap, wts, pos, mn)) = plan.adapt {
            allow(Some((ap + 24, 1))); // kept
            allow(Some((ap + 32, 2))); // diversity_loss
            allow(Some(wts));
            allow(Some(pos));
            allow(Some(mn));
        }
        if ok_step {
            allow(Some(plan.w));
            allow(Some(plan.g));
            allow(Some(plan.b));
            for k in 0..3 {
                allow(plan.bufs[k]);
                allow(Some((plan.rules + 64 * k as u32 + 28, 1)));
                allow(Some((plan.rules + 64 * k as u32 + 52, 1)));
                allow(plan.moments[k].map(|(a, _)| a));
                allow(plan.moments[k].map(|(_, b)| b));
            }
        }
        for a in (arena..end).step_by(4) {
            if changed(self, a) {
                let inside = allowed[..na].iter().any(|&(p, n)| a >= p && (a as u64) < p as u64 + 4 * n as u64);
                assert!(inside, "case {case}: {export:?} (status {status}) wrote at {a:#x}, outside its outputs");
            }
        }
        let m = &self.mirror.bufs;
        if export == Export::Step && status != 0 {
            for k in 0..3u32 {
                let rec = plan.rules + 64 * k;
                assert!(
                    !changed(self, rec + 28) && !changed(self, rec + 52),
                    "case {case}: a failed step changed a rule record"
                );
            }
        }
        if status == 0 {
            let check = |k: usize, at: Option<(u32, usize)>, what: &str| {
                if let Some(at) = at {
                    assert!(same_bits(&m[k], at), "case {case}: {export:?} {what} differs from the drivers'");
                }
            };
            check(M_PACK, Some(plan.pack), "pack");
            check(M_Z, Some(plan.z), "z");
            check(M_D, Some(plan.d), "d");
            check(M_DELTA, plan.delta, "delta");
            check(M_UNITS, plan.units, "units");
            check(M_UL, plan.unit_loss, "unit_loss");
            check(M_DW, plan.dw, "dw");
            check(M_DB, plan.db, "db");
            if let Some((_, wts, pos, mn)) = plan.adapt {
                check(M_SAMPLE_WEIGHTS, Some(wts), "adapt weights");
                check(M_POSITIVE, Some(pos), "adapt positive");
                check(M_MEAN, Some(mn), "adapt mean");
                for (k, at) in [wts, pos, mn].into_iter().enumerate() {
                    assert!(all_finite_at(at), "case {case}: adapt region {k} not finite after status 0");
                }
            }
            if export == Export::Step {
                check(M_W, Some(plan.w), "w");
                check(M_G, Some(plan.g), "g");
                check(M_B, Some(plan.b), "b");
                for k in 0..3 {
                    check(M_BUF + k, plan.bufs[k], "momentum buffer");
                    check(M_EXP_AVG + k, plan.moments[k].map(|(a, _)| a), "exp_avg");
                    check(M_EXP_AVG_SQ + k, plan.moments[k].map(|(_, b)| b), "exp_avg_sq");
                    assert_eq!(rd(plan.rules + 64 * k as u32 + 52), step_words[k], "case {case}: Adam step {k}");
                    assert_eq!(rd(plan.rules + 64 * k as u32 + 28), ready_words[k], "case {case}: buf_ready {k}");
                }
            }
            // Nothing a user sees is NaN or ±∞ after status 0 (delta of the entropy export is
            // scratch: it can overflow only for a scale beyond 2e38, which TypeScript never sets).
            let mut visible =
                [Some(plan.z), Some(plan.d), plan.units, plan.unit_loss, plan.dw, plan.db, None, None, None];
            if export >= Export::Gradients {
                visible[6] = plan.delta;
            }
            if export == Export::Step {
                // Parameters are written only under an SGD rule (a frozen one keeps whatever
                // was there, finite or not).
                let sgd = |k: u32| rd(plan.rules + 64 * k) == 1 || rd(plan.rules + 64 * k) == 2;
                visible[7] = sgd(0).then_some(plan.w);
                visible[8] = sgd(2).then_some(plan.b);
                assert!(!sgd(1) || all_finite_at(plan.g), "case {case}: g not finite");
                for k in 0..3 {
                    if let Some(at) = plan.bufs[k] {
                        assert!(all_finite_at(at), "case {case}: momentum buffer {k} not finite");
                    }
                    if let Some((a, b)) = plan.moments[k] {
                        assert!(all_finite_at(a) && all_finite_at(b), "case {case}: Adam moments {k} not finite");
                    }
                }
            }
            const NAMES: [&str; 9] = ["z", "d", "units", "unit_loss", "dw", "db", "delta", "w", "b"];
            for (k, at) in visible.into_iter().enumerate() {
                if let Some(at) = at {
                    assert!(all_finite_at(at), "case {case}: {export:?} status 0 left a non-finite {}", NAMES[k]);
                }
            }
            if export >= Export::Entropy {
                let loss = f64::from_bits(rd(args + 96) as u64 | (rd(args + 100) as u64) << 32);
                let ent = f64::from_bits(rd(args + 104) as u64 | (rd(args + 108) as u64) << 32);
                assert!(loss.is_finite() && ent.is_finite(), "case {case}: {export:?} totals {loss} {ent}");
            }
        } else if export >= Export::Entropy {
            let loss = f64::from_bits(rd(args + 96) as u64 | (rd(args + 100) as u64) << 32);
            assert!(loss.is_nan(), "case {case}: a failed {export:?} left loss = {loss}");
        }
        if let Some((ap, ..)) = plan.adapt {
            let dl = rd(ap + 32) as u64 | (rd(ap + 36) as u64) << 32;
            assert_eq!(rd(ap + 24), kept, "case {case}: adapt kept");
            assert!(
                dl == diversity_loss || (f64::from_bits(dl).is_nan() && f64::from_bits(diversity_loss).is_nan()),
                "case {case}: adapt diversity_loss"
            );
        }
    }
}

#[test]
fn exports_survive_hostile_args_blocks() {
    // Everything the loop needs is allocated before the arena is grown.
    let mut fuzz =
        Fuzzer { arena: 0, end: 0, snapshot: vec![0u32; ARENA_WORDS], mirror: Mirror::new(), tally: Tally::default() };
    let before = memory_grow::<0>(ARENA_PAGES as usize);
    assert!(before != usize::MAX, "cannot grow memory for the arena");
    fuzz.arena = before as u32 * PAGE;
    fuzz.end = fuzz.arena + ARENA_BYTES;
    assert_eq!(mem_bytes(), fuzz.end as u64);

    let deadline = date_now() + SECONDS as f64 * 1000.0;
    let mut case = 0u64;
    while date_now() < deadline {
        if TRACE {
            log_number(case as f64);
        }
        let mut rng = Rng::new(SEED ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (args, export) = fuzz.layout(&mut rng);
        fuzz.call(case, args, export);
        // The same layout again, with the batch grown (regions now reach further) or another
        // export, a few times.
        let inside = args >= fuzz.arena && args % 4 == 0 && args as u64 + ARGS_BYTES as u64 <= fuzz.end as u64;
        if inside {
            for _ in 0..rng.below(4) {
                if rng.below(2) == 0 {
                    let b = rd(args);
                    let most = if rng.below(4) == 0 { 1 << 16 } else { 8 };
                    let nb = b.wrapping_add(1 + rng.below(most) as u32);
                    wr(args, nb);
                    // Half the time the caller also asks pack_floats again (as TypeScript does).
                    if rng.below(2) == 0 {
                        wr(args + 4 * PACK_LEN as u32, pack_floats(nb, rd(args + 4), rd(args + 8)));
                    }
                }
                let export = [Export::Forward, Export::Entropy, Export::Gradients, Export::Step][rng.below(4)];
                fuzz.call(case, args, export);
            }
        }
        case += 1;
    }
    fuzz.tally.cases = case;
    let t = &fuzz.tally;
    wasm_bindgen_test::console_log!(
        "fuzz_abi ({}): {} cases, {} calls in {} s, statuses 0..5: {:?}, seed {:#x}",
        if entrograd_core::SIMD { "simd128" } else { "scalar" },
        t.cases,
        t.calls,
        SECONDS,
        t.status,
        SEED
    );
    assert!(t.status[0] > 0 && t.status[5] > 0, "the fuzzer never reached both outcomes: {:?}", t.status);
}
