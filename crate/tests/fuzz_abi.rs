//! Fuzzing of the wasm exports' boundary (issue 7): args blocks with arbitrary shapes, pointers,
//! lengths, overlaps, loss coefficients, rule and adapt records, and batches that grow between
//! calls on the same layout. A stable-Rust harness (no `cargo fuzz`, which needs nightly): a
//! seeded mutation loop run for a bounded time in the test run, longer on demand.
//!
//! The records are the structs of `entrograd_core::abi`, laid out as TypeScript lays them out,
//! in an arena of fresh pages at the very end of linear memory, grown here before the loop and
//! owned by no allocator, so every region either lies in the arena or reaches past the end of
//! memory, and the loop allocates nothing (memory never grows under it). For every call:
//! * the export returns, without trapping, a status in 0..=5;
//! * status 5 exactly when the block is malformed by an independent reading of
//!   docs/core-abi.md (`expect_valid`), and then not one byte of the arena changed;
//! * otherwise only the regions that export may write changed (never TypeScript's records; on
//!   a failed step, not the parameters, buffers or moments either), the status and every output
//!   equal, bit for bit, those of the Rust drivers run on copies of the inputs, the results
//!   record says what the drivers found, and after status 0 nothing written that a user sees is
//!   NaN or ±∞.
//!
//! Compile-time knobs (read by `option_env!`, so they work under wasm; cargo rebuilds when they
//! change): `ENTROGRAD_FUZZ_SECONDS` (default 4 per build), `ENTROGRAD_FUZZ_SEED`,
//! `ENTROGRAD_FUZZ_TRACE=1` (logs each case number, to find the one that trapped). Long runs:
//! `npm run fuzz -- --seconds 600`.

#![cfg(target_arch = "wasm32")]
#![allow(clippy::needless_range_loop)]

mod common;

use core::arch::wasm32::{memory_grow, memory_size};
use core::mem::{align_of, offset_of, size_of};

use common::{peek, poke, Rng};
use entrograd_core::abi::{AdaptRecord, Args, Results, RuleRecord};
use entrograd_core::adapt::{Adapt, AdaptWork};
use entrograd_core::bindings::{forward_export, gradients_export, objective_export, pack_floats, step_export};
use entrograd_core::step;
use entrograd_core::{Error, Input, Layer, LossCoefficients, Optimizer, Rule, RuleKind, Shape, Work};
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
const ARGS_BYTES: u32 = size_of::<Args>() as u32;
const RULES_BYTES: u32 = size_of::<[RuleRecord; 3]>() as u32;
const ADAPT_BYTES: u32 = size_of::<AdaptRecord>() as u32;
const RESULTS_BYTES: u32 = size_of::<Results>() as u32;

/// The args block's pointer fields, in placement order, and the floats each points at (`RULES`
/// and `RESULTS` are records).
const POINTERS: usize = 15;
const RULES: usize = 12;
const RESULTS: usize = 14;
const TARGETS: usize = 1;
fn pointer(a: &mut Args, k: usize) -> &mut u32 {
    match k {
        0 => &mut a.x,
        TARGETS => &mut a.targets,
        2 => &mut a.w,
        3 => &mut a.g,
        4 => &mut a.b,
        5 => &mut a.pack,
        6 => &mut a.z,
        7 => &mut a.d,
        8 => &mut a.delta,
        9 => &mut a.unit_entropy,
        10 => &mut a.dw,
        11 => &mut a.db,
        RULES => &mut a.rules,
        13 => &mut a.unit_loss,
        RESULTS => &mut a.results,
        _ => unreachable!(),
    }
}

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
    Objective,
    Gradients,
    Step,
}

const EXPORTS: [Export; 4] = [Export::Forward, Export::Objective, Export::Gradients, Export::Step];

impl Export {
    fn call(self, args: u32) -> u32 {
        match self {
            Export::Forward => forward_export(args),
            Export::Objective => objective_export(args),
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

/// Floats at an address: (start, floats).
type At = (u32, usize);

/// The regions of a valid block, as `expect_valid` read them from docs/core-abi.md.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    shape: (usize, usize, usize),
    /// Float regions; `floats == 0` or absent means untouched.
    x: At,
    targets: Option<At>,
    w: At,
    g: At,
    b: At,
    /// The packing scratch: `pack_floats(batch, inputs, outputs)` floats.
    pack: At,
    z: At,
    d: At,
    delta: Option<At>,
    unit_entropy: Option<At>,
    unit_loss: Option<At>,
    dw: Option<At>,
    db: Option<At>,
    /// The rule records (step).
    rules: u32,
    bufs: [Option<At>; 3],
    /// Adam's moments (exp_avg, exp_avg_sq) per Adam rule.
    moments: [Option<(At, At)>; 3],
    /// The adapt record and its weights, positive and mean regions (gradients and step).
    adapt: Option<(u32, At, At, At)>,
    /// With the diversity term: its prior and marginal (read) and running (written) regions.
    marginal: Option<(At, At, At)>,
    /// Semi-supervised rows: how many are labelled.
    labelled: Option<usize>,
    /// The results record (objective, gradients, step).
    results: Option<u32>,
}

/// A record's address: non-zero, aligned for `T`, inside memory.
fn record_at<T>(p: u32, mem: u64) -> bool {
    p != 0 && (p as usize).is_multiple_of(align_of::<T>()) && p as u64 + size_of::<T>() as u64 <= mem
}

/// The contract, read independently of `bindings`: `Some(plan)` when the export must accept
/// the block, `None` when it must return 5.
fn expect_valid(args: u32, export: Export) -> Option<Plan> {
    let mem = mem_bytes();
    if !record_at::<Args>(args, mem) {
        return None;
    }
    let a: Args = peek(args);
    let (b, i, o) = (a.batch as u64, a.inputs as u64, a.outputs as u64);
    // Sizes overflow: every float count, in bytes, must fit in 32 bits.
    if [b * i, o * i, b * o].iter().any(|&n| n * 4 > u32::MAX as u64) {
        return None;
    }
    let (xn, wn, zn, on) = ((b * i) as usize, (o * i) as usize, (b * o) as usize, o as usize);
    let mut regs = [Reg::default(); 40];
    let mut n = 0;
    let mut ok = true;
    let mut push = |r: Reg, regs: &mut [Reg; 40]| {
        regs[n] = r;
        n += 1;
    };
    let record = |p: u32, bytes: u32, writable: bool| Reg { start: p as u64, end: p as u64 + bytes as u64, writable };
    // The records: the results (written), and those TypeScript writes (only read). Noted with
    // the float regions after those.
    let mut records = [Some(record(args, ARGS_BYTES, false)), None, None, None];
    // A float region: empty → untouched (any pointer); else non-zero (unless optional, when 0
    // means absent), 4-aligned, inside memory.
    let mut region = |ptr: u32, floats: usize, writable: bool, optional: bool, regs: &mut [Reg; 40]| -> Option<At> {
        if floats == 0 {
            return Some((0, 0));
        }
        if ptr == 0 {
            if !optional {
                ok = false;
            }
            return None;
        }
        if !ptr.is_multiple_of(4) || ptr as u64 + 4 * floats as u64 > mem {
            ok = false;
            return None;
        }
        push(Reg { start: ptr as u64, end: ptr as u64 + 4 * floats as u64, writable }, regs);
        Some((ptr, floats))
    };
    let objective = export >= Export::Objective;
    let grads = export >= Export::Gradients;
    let mut plan = Plan { shape: (b as usize, i as usize, o as usize), ..Plan::default() };
    // Semi-supervised rows (every export): the flag 0 or 1, at most `batch` labelled rows; the
    // targets are then the labelled rows' only.
    plan.labelled = match a.semi_supervised {
        0 => None,
        1 if a.labelled_rows as u64 <= b => Some(a.labelled_rows as usize),
        _ => return None,
    };
    plan.x = region(a.x, xn, false, false, &mut regs).unwrap_or_default();
    if objective && a.cross_entropy_weight != 0.0 {
        let rows = plan.labelled.unwrap_or(b as usize);
        plan.targets = region(a.targets, rows * on, false, false, &mut regs);
    }
    // Parameters count as written in every export (the bindings hold them as `&mut`).
    plan.w = region(a.w, wn, true, false, &mut regs).unwrap_or_default();
    plan.g = region(a.g, wn, true, false, &mut regs).unwrap_or_default();
    plan.b = region(a.b, on, true, false, &mut regs).unwrap_or_default();
    // Packing scratch, required by every export: `pack_len` at least `pack_floats(batch,
    // inputs, outputs)` (u32::MAX: no such call can succeed); that many floats at `pack` are
    // written scratch.
    let need = pack_floats(b as u32, i as u32, o as u32);
    if need == u32::MAX || a.pack_len < need {
        return None;
    }
    plan.pack = region(a.pack, need as usize, true, false, &mut regs).unwrap_or_default();
    plan.z = region(a.z, zn, true, false, &mut regs).unwrap_or_default();
    plan.d = region(a.d, zn, true, false, &mut regs).unwrap_or_default();
    if objective {
        plan.delta = region(a.delta, zn, true, !grads, &mut regs);
        plan.unit_entropy = region(a.unit_entropy, zn, true, true, &mut regs);
        plan.unit_loss = region(a.unit_loss, zn, true, true, &mut regs);
        // The results record: the only record the core writes.
        if !record_at::<Results>(a.results, mem) {
            return None;
        }
        records[1] = Some(record(a.results, RESULTS_BYTES, true));
        plan.results = Some(a.results);
    }
    if grads {
        plan.dw = region(a.dw, wn, true, false, &mut regs);
        plan.db = region(a.db, on, true, false, &mut regs);
    }
    if export == Export::Step {
        if !record_at::<[RuleRecord; 3]>(a.rules, mem) {
            return None;
        }
        records[2] = Some(record(a.rules, RULES_BYTES, false));
        plan.rules = a.rules;
        let records: [RuleRecord; 3] = peek(a.rules);
        let lens = [wn, wn, on];
        for k in 0..3 {
            let r = &records[k];
            if r.kind > 2 {
                return None;
            }
            if r.kind == 1 && r.momentum != 0.0 {
                plan.bufs[k] = region(r.buf, lens[k], true, false, &mut regs);
            }
            if r.kind == 2 {
                let m = region(r.exp_avg, lens[k], true, false, &mut regs);
                let v = region(r.exp_avg_sq, lens[k], true, false, &mut regs);
                plan.moments[k] = m.zip(v);
            }
        }
        // Clipping: 0 (off) or a positive, finite norm.
        if !(a.max_grad_norm >= 0.0 && a.max_grad_norm.is_finite()) {
            return None;
        }
    }
    // Test-time adaptation (gradients and step): 0 or a record whose flags (bits 1, 2, 4), E0
    // and λ (finite) and β (in [0, 1)) are valid; unit_entropy and unit_loss must be given; its
    // weights (batch floats), positive and mean (outputs floats) are written regions, and with
    // λ ≠ 0 prior and marginal (read) and running (written), outputs floats each.
    if grads && a.adapt != 0 {
        if !record_at::<AdaptRecord>(a.adapt, mem) {
            return None;
        }
        records[3] = Some(record(a.adapt, ADAPT_BYTES, false));
        let r: AdaptRecord = peek(a.adapt);
        if r.flags & !7 != 0 || !r.max_entropy.is_finite() || !r.diversity.is_finite() {
            return None;
        }
        if !(r.marginal_momentum >= 0.0 && r.marginal_momentum < 1.0) {
            return None;
        }
        if a.unit_entropy == 0 || a.unit_loss == 0 {
            return None;
        }
        let weights = region(r.sample_weights, b as usize, true, false, &mut regs);
        let positive = region(r.positive, on, true, false, &mut regs);
        let mean = region(r.mean, on, true, false, &mut regs);
        if let (Some(w), Some(p), Some(m)) = (weights, positive, mean) {
            plan.adapt = Some((a.adapt, w, p, m));
        }
        if r.diversity != 0.0 {
            let prior = region(r.prior, on, false, false, &mut regs);
            let marginal = region(r.marginal, on, false, false, &mut regs);
            let running = region(r.running, on, true, false, &mut regs);
            if let (Some(p), Some(m), Some(r)) = (prior, marginal, running) {
                plan.marginal = Some((p, m, r));
            }
        }
    }
    if !ok {
        return None;
    }
    for r in records.into_iter().flatten() {
        push(r, &mut regs);
    }
    for p in 0..n {
        for q in p + 1..n {
            let (r, s) = (regs[p], regs[q]);
            if (r.writable || s.writable) && r.start < s.end && s.start < r.end {
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
const M_UNIT_ENTROPY: usize = 9;
const M_UNIT_LOSS: usize = 10;
const M_DW: usize = 11;
const M_DB: usize = 12;
const M_BUF: usize = 13; // ..16
const M_EXP_AVG: usize = 16; // ..19
const M_EXP_AVG_SQ: usize = 19; // ..22
const M_SAMPLE_WEIGHTS: usize = 22;
const M_POSITIVE: usize = 23;
const M_MEAN: usize = 24;
const M_PRIOR: usize = 25;
const M_MARGINAL: usize = 26;
const M_RUNNING: usize = 27;

impl Mirror {
    fn new() -> Mirror {
        Mirror { bufs: (0..28).map(|_| Vec::with_capacity(ARENA_WORDS)).collect() }
    }
    fn load(&mut self, k: usize, at: At) {
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
    fn load_or_blank(&mut self, k: usize, at: Option<At>) {
        match at {
            Some(at) => self.load(k, at),
            None => self.blank(k, 0),
        }
    }
}

fn same_bits(a: &[f32], at: At) -> bool {
    a.len() == at.1 && (0..at.1).all(|j| a[j].to_bits() == rd(at.0 + 4 * j as u32))
}

fn all_finite_at(at: At) -> bool {
    (0..at.1).all(|j| rdf(at.0 + 4 * j as u32).is_finite())
}

/// The drivers' outcome: their status, and the results record the export must write.
struct Outcome {
    status: u32,
    results: Results,
}

/// Runs the drivers on copies of what the block points at; leaves their outputs in the mirror.
fn run_drivers(plan: &Plan, args: u32, export: Export, m: &mut Mirror) -> Outcome {
    let (b, i, o) = plan.shape;
    let shape = Shape::new(b, i, o);
    let (wn, zn) = (shape.w_len(), shape.z_len());
    let a: Args = peek(args);
    m.load(M_X, plan.x);
    m.load_or_blank(M_Y, plan.targets);
    m.load(M_W, plan.w);
    m.load(M_G, plan.g);
    m.load(M_B, plan.b);
    // The scratch starts as the arena holds it, so parts a call leaves alone compare equal.
    m.load(M_PACK, plan.pack);
    for (k, n) in [(M_Z, zn), (M_D, zn), (M_DELTA, zn), (M_UNIT_ENTROPY, zn), (M_UNIT_LOSS, zn), (M_DW, wn), (M_DB, o)]
    {
        m.blank(k, n);
    }
    let coefficients =
        LossCoefficients { entropy: a.entropy_weight, cross_entropy: a.cross_entropy_weight, scale: a.scale };
    let mut rules = [Rule::FROZEN; 3];
    if export == Export::Step {
        let records: [RuleRecord; 3] = peek(plan.rules);
        for k in 0..3 {
            rules[k] = Rule::decode(&records[k]).expect("expect_valid checked the kinds");
            m.load_or_blank(M_BUF + k, plan.bufs[k]);
            m.load_or_blank(M_EXP_AVG + k, plan.moments[k].map(|(a, _)| a));
            m.load_or_blank(M_EXP_AVG_SQ + k, plan.moments[k].map(|(_, b)| b));
        }
    }
    let cfg = plan.adapt.and_then(|(ap, ..)| Adapt::decode(&peek(ap)));
    for (k, at) in [M_SAMPLE_WEIGHTS, M_POSITIVE, M_MEAN].into_iter().zip(match plan.adapt {
        Some((_, w, p, mn)) => [w.1, p.1, mn.1],
        None => [0; 3],
    }) {
        m.blank(k, at);
    }
    m.load_or_blank(M_PRIOR, plan.marginal.map(|(p, ..)| p));
    m.load_or_blank(M_MARGINAL, plan.marginal.map(|(_, mg, _)| mg));
    m.blank(M_RUNNING, plan.marginal.map_or(0, |(.., r)| r.1));
    let [x, y, w, g, bb, pack, z, d, delta, unit_entropy, ul, dw, db, b0, b1, b2, m0, m1, m2, v0, v1, v2, sw, pos, mn, pr, mg, rn] =
        &mut m.bufs[..]
    else {
        unreachable!()
    };
    let targets = plan.targets.map(|_| &y[..]);
    let mut layer = Layer { w, g, b: bb };
    let mut work = Work {
        pack,
        z,
        d,
        delta: (plan.delta.is_some() || export >= Export::Gradients).then_some(&mut delta[..]),
        unit_entropy: plan.unit_entropy.is_some().then_some(&mut unit_entropy[..]),
        unit_loss: plan.unit_loss.is_some().then_some(&mut ul[..]),
        dw: (export >= Export::Gradients).then_some(&mut dw[..]),
        db: (export >= Export::Gradients).then_some(&mut db[..]),
        adapt: cfg.map(|cfg| AdaptWork {
            cfg,
            sample_weights: &mut sw[..],
            positive: &mut pos[..],
            mean: &mut mn[..],
            prior: &pr[..],
            marginal: &mg[..],
            running: &mut rn[..],
            kept: 0,
            diversity_loss: f64::NAN,
        }),
    };
    let input = Input { shape, x, targets, coefficients, labelled: plan.labelled };
    let result = match export {
        Export::Forward => step::forward_pass(&input, &layer, &mut work).map(|()| Default::default()),
        Export::Objective => step::objective_pass(&input, &layer, &mut work),
        Export::Gradients => step::gradients_pass(&input, &layer, &mut work),
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
                max_grad_norm: a.max_grad_norm,
            };
            step::step(&input, &mut layer, &mut work, &mut opt)
        }
    };
    let status = result.map_or_else(Error::code, |_| 0);
    let results = match (result, work.adapt.as_ref()) {
        (Ok(t), adapt) => Results {
            loss: t.loss,
            entropy: t.entropy,
            diversity_loss: adapt.map_or(0.0, |a| a.diversity_loss),
            kept: adapt.map_or(0, |a| a.kept),
            reserved: 0,
        },
        (Err(_), _) => Results { loss: f64::NAN, entropy: f64::NAN, diversity_loss: f64::NAN, kept: 0, reserved: 0 },
    };
    Outcome { status, results }
}

/// Equal bits, or both NaN (wasm leaves a NaN's payload unspecified).
fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
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
        if p != 0 && p < self.arena && p.is_multiple_of(4) {
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
        let inside = |p: u32, bytes: u32| p >= arena && p as u64 + bytes as u64 <= end as u64 && p.is_multiple_of(4);
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
        let lens: [u64; POINTERS] = [xn, zn, wn, wn, on, pn, zn, zn, zn, zn, wn, on, 0, zn, 0];
        let mut ptrs = [0u32; POINTERS];
        for k in 0..POINTERS {
            ptrs[k] = match k {
                RULES => take(RULES_BYTES as u64, 4 << rng.below(3), rng),
                RESULTS => take(RESULTS_BYTES as u64, 4 << rng.below(3), rng),
                _ if lens[k] == 0 && rng.below(2) == 0 => 0,
                _ => take(4 * lens[k], 4 << rng.below(3), rng),
            };
        }
        // Fill the float regions that fit with values (targets mostly in [0, 1]).
        for k in 0..POINTERS {
            let p = ptrs[k];
            if k == RULES || k == RESULTS || p < arena || p as u64 + 4 * lens[k] > end as u64 {
                continue;
            }
            for j in 0..lens[k] as u32 {
                let v = if k == TARGETS && rng.below(30) != 0 { rng.unit() as f32 } else { special(rng) };
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
        let mut all = [0u32; POINTERS + 9];
        all[..POINTERS].copy_from_slice(&ptrs);
        all[POINTERS..].copy_from_slice(&bufs);
        let others: [u32; POINTERS + 10] = core::array::from_fn(|k| if k < all.len() { all[k] } else { args });
        for _ in 0..rng.below(3) {
            if rng.below(2) == 0 {
                let k = rng.below(all.len());
                all[k] = self.bad_pointer(rng, all[k], &others);
            }
        }
        for k in [8, 9, 13] {
            if rng.below(4) == 0 {
                all[k] = 0;
            }
        }
        let args = if rng.below(40) == 0 { self.bad_pointer(rng, args, &others) } else { args };
        if !inside(args, ARGS_BYTES) {
            // Nowhere to write the block (the export must still return 5 without reading it).
            return (args, Export::Forward);
        }
        let mut a = Args { batch: b, inputs: i, outputs: o, ..Args::default() };
        for k in 0..POINTERS {
            *pointer(&mut a, k) = all[k];
        }
        a.entropy_weight = weight(rng);
        a.cross_entropy_weight = weight(rng);
        a.scale = match rng.below(6) {
            0 => 1.0,
            1 => special(rng),
            _ => 1.0 / b.max(1) as f32,
        };
        // pack_len: mostly what pack_floats asks, sometimes more (fine), one short or anything.
        a.pack_len = match rng.below(10) {
            0 => (pn as u32).wrapping_sub(1),
            1 => rng.next_u64() as u32,
            2 => (pn as u32).saturating_add(rng.below(64) as u32),
            _ => pn as u32,
        };
        // An adapt record in a third of the cases (gradients and step read it); sometimes moved
        // onto another region, or made wrong otherwise.
        a.adapt = if rng.below(3) == 0 {
            let mut ap = take(ADAPT_BYTES as u64, 8, rng);
            if rng.below(6) == 0 {
                ap = self.bad_pointer(rng, ap, &others);
            }
            if inside(ap, ADAPT_BYTES) {
                let flags = match rng.below(10) {
                    0 => rng.next_u64() as u32,
                    1 => 8,
                    _ => rng.below(8) as u32,
                };
                let max_entropy = if rng.below(10) == 0 { special(rng) } else { rng.unit() as f32 * o as f32 };
                let diversity = match rng.below(6) {
                    0 => special(rng),
                    1 | 2 => 0.0,
                    _ => rng.unit() as f32,
                };
                let marginal_momentum = match rng.below(8) {
                    0 => special(rng),
                    1 => 1.0,
                    2 => 0.0,
                    _ => rng.unit() as f32 * 0.99,
                };
                let mut arrays = [0u32; 6];
                for (k, n) in [b as u64, o as u64, o as u64, o as u64, o as u64, o as u64].into_iter().enumerate() {
                    let p = take(4 * n, 4, rng);
                    arrays[k] = if rng.below(12) == 0 { self.bad_pointer(rng, p, &others) } else { p };
                    // The prior and marginal (k = 3, 4): mostly in [0, 1].
                    if (k == 3 || k == 4) && 4 * n <= ARENA_BYTES as u64 && inside(arrays[k], (4 * n) as u32) {
                        for j in 0..n as u32 {
                            let v = if rng.below(20) != 0 { rng.unit() as f32 } else { special(rng) };
                            wr(arrays[k] + 4 * j, v.to_bits());
                        }
                    }
                }
                let [sample_weights, positive, mean, prior, marginal, running] = arrays;
                poke(
                    ap,
                    AdaptRecord {
                        flags,
                        max_entropy,
                        diversity,
                        sample_weights,
                        positive,
                        mean,
                        prior,
                        marginal,
                        marginal_momentum,
                        running,
                    },
                );
            }
            ap
        } else {
            0
        };
        // Semi-supervised rows in a fifth of the cases: mostly a valid count, sometimes more rows
        // than the batch or a flag that is neither 0 nor 1.
        (a.semi_supervised, a.labelled_rows) = match rng.below(20) {
            0 => (rng.next_u64() as u32, rng.below(4) as u32),
            1 => (1, b.wrapping_add(1 + rng.below(3) as u32)),
            2..=4 => (1, (rng.next_u64() % (b as u64 + 1)) as u32),
            _ => (0, if rng.below(2) == 0 { 0 } else { rng.next_u64() as u32 }),
        };
        a.max_grad_norm = match rng.below(12) {
            0..=5 => 0.0,
            6 => -0.0,
            7 => special(rng),
            8 => f32::from_bits(rng.next_u64() as u32),
            _ => rng.unit() as f32 * 4.0,
        };
        let rules = all[RULES];
        if inside(rules, RULES_BYTES) {
            let q = |rng: &mut Rng, usual: f32| match rng.below(8) {
                0 => special(rng),
                1 => rng.unit() as f32,
                _ => usual,
            };
            let records: [RuleRecord; 3] = core::array::from_fn(|k| RuleRecord {
                kind: match rng.below(14) {
                    0 => 3,
                    1 => rng.next_u64() as u32,
                    2 | 3 => 0,
                    4..=7 => 2,
                    _ => 1,
                },
                lr: if rng.below(10) == 0 { special(rng) } else { rng.unit() as f32 },
                weight_decay: if rng.below(2) == 0 { 0.0 } else { rng.unit() as f32 * 0.1 },
                momentum: match rng.below(4) {
                    0 => 0.0,
                    1 => special(rng),
                    _ => rng.unit() as f32,
                },
                dampening: rng.unit() as f32,
                nesterov: if rng.below(2) == 0 { 0 } else { rng.next_u64() as u32 },
                buf: all[POINTERS + k],
                buf_ready: if rng.below(2) == 0 { 0 } else { rng.next_u64() as u32 },
                // Adam: 1 − β₁, 1 − β₂, ε, the moments, the step count.
                one_minus_beta1: q(rng, 0.1),
                one_minus_beta2: q(rng, 0.001),
                eps: q(rng, 1e-8),
                exp_avg: all[POINTERS + 3 + k],
                exp_avg_sq: all[POINTERS + 6 + k],
                step: match rng.below(6) {
                    0 => u32::MAX - rng.below(2) as u32,
                    1 => rng.next_u64() as u32,
                    _ => rng.below(5) as u32,
                },
            });
            poke(rules, records);
        }
        // The args block last: where a mutated record overlaps it, the block's own fields win.
        poke(args, a);
        (args, EXPORTS[rng.below(4)])
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
        let Outcome { status: want, results: want_results } = driver.unwrap();
        assert!(status != 5, "case {case}: {export:?} rejected a well-formed block");
        assert_eq!(status, want, "case {case}: {export:?} status differs from the drivers'");
        // Writes only where this export may write: never TypeScript's records.
        let ok_step = export == Export::Step && status == 0;
        let mut allowed = [(0u32, 0usize); 40];
        let mut na = 0;
        let mut allow = |r: Option<At>| {
            if let Some(r) = r {
                allowed[na] = r;
                na += 1;
            }
        };
        allow(Some(plan.pack));
        allow(Some(plan.z));
        allow(Some(plan.d));
        allow(plan.delta);
        allow(plan.unit_entropy);
        allow(plan.unit_loss);
        allow(plan.results.map(|r| (r, RESULTS_BYTES as usize / 4)));
        allow(plan.dw);
        allow(plan.db);
        if let Some((_, wts, pos, mn)) = plan.adapt {
            allow(Some(wts));
            allow(Some(pos));
            allow(Some(mn));
        }
        allow(plan.marginal.map(|(.., r)| r));
        if ok_step {
            allow(Some(plan.w));
            allow(Some(plan.g));
            allow(Some(plan.b));
            for k in 0..3 {
                allow(plan.bufs[k]);
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
        if let Some(at) = plan.results {
            let r: Results = peek(at);
            assert!(same_f64(r.loss, want_results.loss), "case {case}: {export:?} results.loss {}", r.loss);
            assert!(same_f64(r.entropy, want_results.entropy), "case {case}: {export:?} results.entropy");
            assert!(same_f64(r.diversity_loss, want_results.diversity_loss), "case {case}: results.diversity_loss");
            assert_eq!(r.kept, want_results.kept, "case {case}: results.kept");
            assert!(status != 0 || (r.loss.is_finite() && r.entropy.is_finite()), "case {case}: results not finite");
            assert!(status == 0 || r.loss.is_nan(), "case {case}: a failed {export:?} left loss = {}", r.loss);
        }
        if status == 0 {
            self.check_outputs(case, &plan, export);
        }
    }

    /// After status 0: every output equals the drivers', and nothing a user sees is NaN or ±∞.
    fn check_outputs(&self, case: u64, plan: &Plan, export: Export) {
        let m = &self.mirror.bufs;
        let check = |k: usize, at: Option<At>, what: &str| {
            if let Some(at) = at {
                assert!(same_bits(&m[k], at), "case {case}: {export:?} {what} differs from the drivers'");
            }
        };
        check(M_PACK, Some(plan.pack), "pack");
        check(M_Z, Some(plan.z), "z");
        check(M_D, Some(plan.d), "d");
        check(M_DELTA, plan.delta, "delta");
        check(M_UNIT_ENTROPY, plan.unit_entropy, "unit_entropy");
        check(M_UNIT_LOSS, plan.unit_loss, "unit_loss");
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
        if let Some((.., running)) = plan.marginal {
            check(M_RUNNING, Some(running), "adapt running marginal");
        }
        // Nothing a user sees is NaN or ±∞ after status 0 (delta of the objective export is
        // scratch: it can overflow only for a scale beyond 2e38, which TypeScript never sets).
        let mut visible =
            [Some(plan.z), Some(plan.d), plan.unit_entropy, plan.unit_loss, plan.dw, plan.db, None, None, None];
        if export >= Export::Gradients {
            visible[6] = plan.delta;
        }
        if export == Export::Step {
            check(M_W, Some(plan.w), "w");
            check(M_G, Some(plan.g), "g");
            check(M_B, Some(plan.b), "b");
            let records: [RuleRecord; 3] = peek(plan.rules);
            for k in 0..3 {
                check(M_BUF + k, plan.bufs[k], "momentum buffer");
                check(M_EXP_AVG + k, plan.moments[k].map(|(a, _)| a), "exp_avg");
                check(M_EXP_AVG_SQ + k, plan.moments[k].map(|(_, b)| b), "exp_avg_sq");
                if let Some(at) = plan.bufs[k] {
                    assert!(all_finite_at(at), "case {case}: momentum buffer {k} not finite");
                }
                if let Some((a, b)) = plan.moments[k] {
                    assert!(all_finite_at(a) && all_finite_at(b), "case {case}: Adam moments {k} not finite");
                }
            }
            // Parameters are written only under a rule that updates (a frozen one keeps whatever
            // was there, finite or not).
            let updated = |k: usize| records[k].kind != RuleKind::Frozen.code();
            visible[7] = updated(0).then_some(plan.w);
            visible[8] = updated(2).then_some(plan.b);
            assert!(!updated(1) || all_finite_at(plan.g), "case {case}: g not finite");
        }
        const NAMES: [&str; 9] = ["z", "d", "unit_entropy", "unit_loss", "dw", "db", "delta", "w", "b"];
        for (k, at) in visible.into_iter().enumerate() {
            if let Some(at) = at {
                assert!(all_finite_at(at), "case {case}: {export:?} status 0 left a non-finite {}", NAMES[k]);
            }
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
        let inside = args >= fuzz.arena && args.is_multiple_of(4) && args as u64 + ARGS_BYTES as u64 <= fuzz.end as u64;
        if inside {
            for _ in 0..rng.below(4) {
                if rng.below(2) == 0 {
                    let mut a: Args = peek(args);
                    let most = if rng.below(4) == 0 { 1 << 16 } else { 8 };
                    a.batch = a.batch.wrapping_add(1 + rng.below(most) as u32);
                    // Half the time the caller also asks pack_floats again (as TypeScript does).
                    if rng.below(2) == 0 {
                        a.pack_len = pack_floats(a.batch, a.inputs, a.outputs);
                    }
                    wr(args + offset_of!(Args, batch) as u32, a.batch);
                    wr(args + offset_of!(Args, pack_len) as u32, a.pack_len);
                }
                fuzz.call(case, args, EXPORTS[rng.below(4)]);
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
