//! The exports themselves, under wasm: the args block, rule records, adapt record and results
//! laid out in this module's own linear memory as TypeScript lays them out (through the structs
//! of `entrograd_core::abi`), and every export checked against the Rust drivers (same kernels,
//! so same bits), including status 5 for malformed blocks, check-before-write through the ABI,
//! and that the core writes only its outputs and the results, never TypeScript's records.

#![cfg(target_arch = "wasm32")]

mod common;

use core::mem::size_of;

use common::{advance, bits, get, peek, poke, put, Fixture, Rng};
use entrograd_core::abi::{AdaptRecord, Args, Results, RuleRecord};
use entrograd_core::bindings::{
    allocate, forward_export, gradients_export, objective_export, pack_floats, release, simd, step_export,
};
use entrograd_core::{Adapt, LossCoefficients, Rule, RuleKind, Shape};
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Floats that hold `T`.
fn floats_of<T>() -> usize {
    size_of::<T>().div_ceil(4)
}

/// The 4-byte words of the `T` at `ptr`, to compare bit for bit.
fn words<T>(ptr: u32) -> Vec<u32> {
    (0..size_of::<T>() as u32 / 4).map(|k| peek::<u32>(ptr + 4 * k)).collect()
}

/// A layer laid out in linear memory through `allocate`, as TypeScript does it. `args`, `rules`
/// and `adapt` are the records as the test last set them; `commit` writes them to memory.
struct Abi {
    shape: Shape,
    /// The args block, with the results record after it.
    at: u32,
    rules_at: u32,
    args: Args,
    rules: [RuleRecord; 3],
    /// The adapt record's address and value, once `adapt_record` made one.
    adapt: Option<(u32, AdaptRecord)>,
    blocks: Vec<(u32, u32)>,
}

impl Abi {
    fn new(shape: Shape, seed: u64, coefficients: LossCoefficients) -> Abi {
        let mut rng = Rng::new(seed);
        let mut abi = Abi {
            shape,
            at: 0,
            rules_at: 0,
            args: Args::default(),
            rules: [RuleRecord::default(); 3],
            adapt: None,
            blocks: vec![],
        };
        // The args block, then the results record (8-byte aligned) after it.
        let results_at = size_of::<Args>().next_multiple_of(core::mem::align_of::<Results>());
        abi.at = abi.alloc((results_at + size_of::<Results>()).div_ceil(4));
        abi.rules_at = abi.alloc(floats_of::<[RuleRecord; 3]>());
        let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
        let r = 1.0 / (shape.inputs as f64).sqrt();
        let fill = |abi: &mut Abi, rng: &mut Rng, n: usize, range: f64| {
            let p = abi.alloc(n);
            put(p, &rng.vec(n, range));
            p
        };
        let x = fill(&mut abi, &mut rng, xn, 2.0);
        let (w, g) = (fill(&mut abi, &mut rng, wn, r), fill(&mut abi, &mut rng, wn, r));
        let b = fill(&mut abi, &mut rng, on, 0.5);
        let pack_len = pack_floats(shape.batch as u32, shape.inputs as u32, shape.outputs as u32);
        assert_eq!(pack_len as usize, entrograd_core::pack_len(shape).unwrap());
        abi.args = Args {
            batch: shape.batch as u32,
            inputs: shape.inputs as u32,
            outputs: shape.outputs as u32,
            x,
            w,
            g,
            b,
            z: abi.alloc(zn),
            d: abi.alloc(zn),
            delta: abi.alloc(zn),
            unit_entropy: abi.alloc(zn),
            unit_loss: abi.alloc(zn),
            dw: abi.alloc(wn),
            db: abi.alloc(on),
            pack: abi.alloc(pack_len as usize),
            pack_len,
            targets: abi.alloc(zn),
            entropy_weight: coefficients.entropy,
            cross_entropy_weight: coefficients.cross_entropy,
            scale: coefficients.scale,
            rules: abi.rules_at,
            results: abi.at + results_at as u32,
            ..Args::default()
        };
        put(abi.args.targets, &rng.targets(zn));
        for (k, n) in [wn, wn, on].into_iter().enumerate() {
            abi.rules[k].buf = fill(&mut abi, &mut rng, n, 0.1);
            abi.rules[k].exp_avg = fill(&mut abi, &mut rng, n, 0.01);
            abi.rules[k].exp_avg_sq = abi.alloc(n);
            put(abi.rules[k].exp_avg_sq, &rng.vec(n, 0.01).iter().map(|x| x * x).collect::<Vec<f32>>());
        }
        abi.commit();
        abi
    }

    fn alloc(&mut self, n: usize) -> u32 {
        let p = allocate(n as u32);
        assert!(p != 0 && p.is_multiple_of(16));
        assert!(get(p, n).iter().all(|&v| v == 0.0), "allocate zero-fills");
        self.blocks.push((p, n as u32));
        p
    }

    /// Writes the records as they are now (TypeScript writes them before each call).
    fn commit(&self) {
        poke(self.at, self.args);
        poke(self.rules_at, self.rules);
        if let Some((at, record)) = self.adapt {
            poke(at, record);
        }
    }

    /// Sets parameter `k`'s rule, keeping its buffers.
    fn rule(&mut self, k: usize, r: &Rule) {
        let record = &mut self.rules[k];
        record.kind = r.kind.code();
        record.lr = r.lr;
        record.weight_decay = r.weight_decay;
        record.momentum = r.momentum;
        record.dampening = r.dampening;
        record.nesterov = r.nesterov as u32;
        record.buf_ready = r.buf_ready as u32;
        record.one_minus_beta1 = r.one_minus_beta1;
        record.one_minus_beta2 = r.one_minus_beta2;
        record.eps = r.eps;
        record.step = r.step;
        self.commit();
    }

    fn decoded_rules(&self) -> [Rule; 3] {
        self.rules.map(|r| Rule::decode(&r).unwrap())
    }

    /// What TypeScript does after a successful step: advance its own counters.
    fn advance(&mut self) {
        for (k, r) in advance(self.decoded_rules()).iter().enumerate() {
            self.rule(k, r);
        }
    }

    fn results(&self) -> Results {
        peek(self.args.results)
    }

    /// The floats of parameter `k`'s buffer, moments: `(buf, exp_avg, exp_avg_sq)`.
    fn state_of(&self, k: usize) -> [Vec<f32>; 3] {
        let n = if k == 2 { self.shape.outputs } else { self.shape.w_len() };
        let r = &self.rules[k];
        [get(r.buf, n), get(r.exp_avg, n), get(r.exp_avg_sq, n)]
    }

    /// The same layer as a fixture for the Rust drivers: copies of what the records point at.
    fn fixture(&self) -> Fixture {
        let (s, a) = (self.shape, &self.args);
        let mut f = Fixture::new(s, 0);
        (f.x, f.y) = (get(a.x, s.x_len()), get(a.targets, s.z_len()));
        (f.w, f.g, f.b) = (get(a.w, s.w_len()), get(a.g, s.w_len()), get(a.b, s.outputs));
        for k in 0..3 {
            [f.bufs[k], f.exp_avg[k], f.exp_avg_sq[k]] = self.state_of(k);
        }
        f.rules = self.decoded_rules();
        f.max_grad_norm = a.max_grad_norm;
        f.coefficients =
            LossCoefficients { entropy: a.entropy_weight, cross_entropy: a.cross_entropy_weight, scale: a.scale };
        f.adapt = self.adapt.map(|(_, r)| Adapt::decode(&r).unwrap());
        if let Some((_, r)) = self.adapt {
            if r.diversity != 0.0 {
                (f.prior, f.marginal) = (get(r.prior, s.outputs), get(r.marginal, s.outputs));
            }
        }
        if a.semi_supervised == 1 {
            f.labelled = Some(a.labelled_rows as usize);
        }
        f
    }

    /// Parameters, buffers, moments and TypeScript's records in memory, as bits.
    fn state(&self) -> Vec<Vec<u32>> {
        let (s, a) = (self.shape, &self.args);
        let mut v = vec![bits(&get(a.w, s.w_len())), bits(&get(a.g, s.w_len())), bits(&get(a.b, s.outputs))];
        for k in 0..3 {
            v.extend(self.state_of(k).iter().map(|x| bits(x)));
        }
        v.push(words::<Args>(self.at));
        v.push(words::<[RuleRecord; 3]>(self.rules_at));
        v
    }

    /// An adapt record laid out as TypeScript lays it out: the record, then the sample weights,
    /// positive fractions and mean predictions, and the diversity term's prior, marginal and
    /// running marginal (β = 0.75).
    fn adapt_record(&mut self, flags: u32, max_entropy: f32, diversity: f32) {
        let (bn, on) = (self.shape.batch, self.shape.outputs);
        let at = self.alloc(floats_of::<AdaptRecord>());
        let (prior, marginal) = (self.alloc(on), self.alloc(on));
        put(prior, &(0..on).map(|o| 0.1 + 0.2 * o as f32).collect::<Vec<_>>());
        put(marginal, &(0..on).map(|o| 0.6 - 0.1 * o as f32).collect::<Vec<_>>());
        let record = AdaptRecord {
            flags,
            max_entropy,
            diversity,
            sample_weights: self.alloc(bn),
            positive: self.alloc(on),
            mean: self.alloc(on),
            prior,
            marginal,
            marginal_momentum: 0.75,
            running: self.alloc(on),
        };
        self.adapt = Some((at, record));
        self.args.adapt = at;
        self.commit();
    }
}

impl Drop for Abi {
    fn drop(&mut self) {
        for &(p, n) in &self.blocks {
            release(p, n);
        }
    }
}

fn same(a: &[f32], b: &[f32]) -> bool {
    bits(a) == bits(b)
}

#[test]
fn simd_export_reports_the_build() {
    assert_eq!(simd(), entrograd_core::SIMD as u32);
}

#[test]
fn allocate_and_release() {
    let p = allocate(0);
    assert!(p != 0 && p.is_multiple_of(16));
    release(p, 0);
    assert_eq!(allocate(u32::MAX), 0, "byte count overflows u32");
    assert_eq!(allocate(0x4000_0000), 0, "4 GiB: overflows u32 bytes");
    assert_eq!(allocate(0x3FFF_FFF0), 0, "memory cannot grow that far: 0, not an abort");
    let ps: Vec<u32> = (1..40).map(|n| allocate(n * 13)).collect();
    assert!(ps.iter().all(|&p| p != 0 && p.is_multiple_of(16)));
    for (n, p) in (1..40).zip(&ps) {
        put(*p, &vec![1.0; n as usize * 13]);
    }
    for (n, p) in (1..40).zip(ps) {
        release(p, n * 13);
    }
    release(0, 5);
}

/// Many blocks of mixed sizes allocated and released in a scrambled order: every block is
/// zero-filled, 16-byte aligned and keeps its contents while others come and go (run with
/// the shipped allocator too: `scripts/test-rust.sh` passes `--features small-alloc` here).
#[test]
fn allocator_keeps_blocks_apart() {
    let mut rng = Rng::new(5);
    let mut live: Vec<(u32, u32, f32)> = Vec::new();
    for round in 0..600 {
        if live.len() > 40 || (!live.is_empty() && rng.below(3) == 0) {
            let (p, n, tag) = live.swap_remove(rng.below(live.len()));
            assert!(get(p, n as usize).iter().all(|&v| v == tag), "block at {p} changed");
            release(p, n);
        } else {
            let n = [0, 1, 3, 4, 17, 100, 1000, 20_000, 70_000][rng.below(9)] as u32;
            let p = allocate(n);
            assert!(p != 0 && p.is_multiple_of(16));
            assert!(get(p, n as usize).iter().all(|&v| v == 0.0), "allocate zero-fills");
            let tag = round as f32 + 0.5;
            put(p, &vec![tag; n as usize]);
            live.push((p, n, tag));
        }
    }
    for (p, n, tag) in live {
        assert!(get(p, n as usize).iter().all(|&v| v == tag));
        release(p, n);
    }
}

/// A step through the export against the same step through the driver, on the abi's current
/// contents; then, as TypeScript does, the counters advance. The core writes no rule record.
fn step_both(a: &mut Abi) -> Fixture {
    let mut f = a.fixture();
    let t = f.step().unwrap();
    let records = words::<[RuleRecord; 3]>(a.rules_at);
    assert_eq!(step_export(a.at), 0);
    assert_eq!(words::<[RuleRecord; 3]>(a.rules_at), records, "the core wrote a rule record");
    let r = a.results();
    assert_eq!((r.loss, r.entropy), (t.loss, t.entropy));
    let (s, args) = (a.shape, &a.args);
    assert!(same(&get(args.w, s.w_len()), &f.w) && same(&get(args.g, s.w_len()), &f.g));
    assert!(same(&get(args.b, s.outputs), &f.b));
    for k in 0..3 {
        let [buf, m, v] = a.state_of(k);
        assert!(same(&buf, &f.bufs[k]) && same(&m, &f.exp_avg[k]) && same(&v, &f.exp_avg_sq[k]));
    }
    a.advance();
    assert_eq!(a.decoded_rules(), f.rules);
    f
}

#[test]
fn exports_match_the_drivers() {
    for (i, shape) in [Shape::new(1, 1, 1), Shape::new(5, 17, 3), Shape::new(33, 9, 17), Shape::new(8, 64, 16)]
        .into_iter()
        .enumerate()
    {
        let coefficients = LossCoefficients { entropy: 0.6, cross_entropy: 0.4, scale: 1.0 / shape.batch as f32 };
        let mut a = Abi::new(shape, i as u64, coefficients);
        let (wn, zn, on) = (shape.w_len(), shape.z_len(), shape.outputs);
        let args = a.args;

        // forward
        let mut f = a.fixture();
        f.forward().unwrap();
        assert_eq!(forward_export(a.at), 0);
        assert!(same(&get(args.z, zn), &f.z) && same(&get(args.d, zn), &f.d));

        // objective (delta written when given)
        let t = f.objective().unwrap();
        assert_eq!(objective_export(a.at), 0);
        assert_eq!(a.results(), Results { loss: t.loss, entropy: t.entropy, ..Results::default() });
        assert!(same(&get(args.unit_entropy, zn), &f.unit_entropy) && same(&get(args.unit_loss, zn), &f.unit_loss));
        assert!(same(&get(args.delta, zn), &f.delta));

        // gradients
        f.gradients().unwrap();
        assert_eq!(gradients_export(a.at), 0);
        assert!(same(&get(args.dw, wn), &f.dw) && same(&get(args.db, on), &f.db));

        // three steps with momentum, Nesterov, decay and a frozen g
        let rules = [
            Rule { momentum: 0.9, weight_decay: 0.01, ..Rule::sgd(0.2) },
            Rule { kind: RuleKind::Frozen, ..Rule::sgd(0.2) },
            Rule { momentum: 0.5, nesterov: true, dampening: 0.1, ..Rule::sgd(0.2) },
        ];
        for (k, r) in rules.iter().enumerate() {
            a.rule(k, r);
        }
        for _ in 0..3 {
            step_both(&mut a);
            assert_eq!(a.rules.map(|r| r.buf_ready), [1, 0, 1]);
        }
    }
}

#[test]
fn forward_reads_only_its_fields() {
    let shape = Shape::new(3, 5, 2);
    let mut a = Abi::new(shape, 9, LossCoefficients { entropy: 1.0, cross_entropy: 1.0, scale: 1.0 });
    let junk = 0xFFFF_FFF1;
    let nan = f32::from_bits(junk);
    a.args = Args {
        targets: junk,
        delta: junk,
        unit_entropy: junk,
        dw: junk,
        db: junk,
        rules: junk,
        unit_loss: junk,
        adapt: junk,
        results: junk,
        entropy_weight: nan,
        cross_entropy_weight: nan,
        scale: nan,
        max_grad_norm: nan,
        ..a.args
    };
    a.commit();
    assert_eq!(forward_export(a.at), 0);
}

#[test]
fn statuses_through_the_abi() {
    let shape = Shape::new(5, 7, 3);
    let coefficients = LossCoefficients { entropy: 0.5, cross_entropy: 0.5, scale: 0.2 };
    type Edit = fn(&mut Abi);
    let cases: Vec<(&str, Edit, u32)> = vec![
        ("NaN x", |a| put(a.args.x + 8, &[f32::NAN]), 1),
        ("Inf target", |a| put(a.args.targets + 4 * 14, &[f32::INFINITY]), 2),
        ("target 1.5", |a| put(a.args.targets, &[1.5]), 3),
        (
            "b update overflows",
            |a| {
                a.rules[2].lr = 1e38;
                a.rules[2].weight_decay = 1e38;
            },
            4,
        ),
        ("x = 0", |a| a.args.x = 0, 5),
        ("x misaligned", |a| a.args.x += 2, 5),
        ("z overlaps d", |a| a.args.d = a.args.z + 4, 5),
        ("dw overlaps x", |a| a.args.dw = a.args.x, 5),
        ("w overlaps the args block", |a| a.args.w = a.at, 5),
        ("z overlaps the rule records", |a| a.args.z = a.rules_at + 8, 5),
        ("z beyond memory", |a| a.args.z = (core::arch::wasm32::memory_size::<0>() * 65536 - 8) as u32, 5),
        ("targets = 0 with αC ≠ 0", |a| a.args.targets = 0, 5),
        (
            "Adam without exp_avg_sq",
            |a| {
                a.rules[1].kind = RuleKind::Adam.code();
                a.rules[1].exp_avg_sq = 0;
            },
            5,
        ),
        (
            "Adam's exp_avg overlaps w",
            |a| {
                a.rules[0].kind = RuleKind::Adam.code();
                a.rules[0].exp_avg = a.args.w;
            },
            5,
        ),
        ("max_grad_norm < 0", |a| a.args.max_grad_norm = -1.0, 5),
        ("max_grad_norm NaN", |a| a.args.max_grad_norm = f32::NAN, 5),
        ("rule kind 7", |a| a.rules[0].kind = 7, 5),
        ("momentum without buffer", |a| a.rules[1].buf = 0, 5),
        ("rules = 0", |a| a.args.rules = 0, 5),
        ("rules misaligned", |a| a.args.rules += 2, 5),
        ("pack = 0", |a| a.args.pack = 0, 5),
        ("pack_len one short", |a| a.args.pack_len -= 1, 5),
        ("pack overlaps z", |a| a.args.pack = a.args.z + 16, 5),
        ("results = 0", |a| a.args.results = 0, 5),
        ("results 4-byte aligned", |a| a.args.results = a.args.z + 4, 5),
        ("results overlap the rule records", |a| a.args.results = a.rules_at, 5),
        (
            "sizes overflow",
            |a| {
                a.args.batch = 0x8000;
                a.args.inputs = 0x8000;
            },
            5,
        ),
    ];
    for (name, edit, want) in cases {
        let mut a = Abi::new(shape, 3, coefficients);
        let r = Rule { momentum: 0.9, ..Rule::sgd(0.1) };
        for k in 0..3 {
            a.rule(k, &r);
        }
        let sentinel = Results { loss: 7.0, entropy: 7.0, diversity_loss: 7.0, kept: 7, reserved: 7 };
        let results_at = a.args.results;
        poke(results_at, sentinel);
        edit(&mut a);
        a.commit();
        let before = a.state();
        assert_eq!(step_export(a.at), want, "{name}");
        assert!(a.state() == before, "{name}: parameters, optimizer state or records changed");
        let results: Results = peek(results_at);
        if want == 5 {
            assert_eq!(results, sentinel, "{name}: status 5 wrote the results");
        } else {
            assert!(results.loss.is_nan() && results.entropy.is_nan() && results.kept == 0, "{name}: results");
        }
    }
    assert_eq!(step_export(0), 5);
    assert_eq!(forward_export(2), 5, "misaligned");
    let end_of_memory = (core::arch::wasm32::memory_size::<0>() * 65536) as u32;
    assert_eq!(forward_export(end_of_memory - 8), 5, "beyond memory");
    // The objective export does not need delta, gradients or rules.
    let mut a = Abi::new(shape, 4, coefficients);
    a.args = Args { delta: 0, dw: 0, db: 0, rules: 0, unit_entropy: 0, unit_loss: 0, ..a.args };
    a.commit();
    assert_eq!(objective_export(a.at), 0);
    assert_eq!(gradients_export(a.at), 5);
}

/// Adam rules, a frozen parameter and clipping through the step export, against the driver;
/// TypeScript advances the step counts (the core never writes a rule record).
#[test]
fn adam_and_clipping_through_the_exports() {
    for (i, shape) in [Shape::new(1, 1, 1), Shape::new(5, 17, 3), Shape::new(8, 64, 16)].into_iter().enumerate() {
        let coefficients = LossCoefficients { entropy: 0.3, cross_entropy: 0.7, scale: 1.0 / shape.batch as f32 };
        let mut a = Abi::new(shape, 20 + i as u64, coefficients);
        let rules = [
            Rule { weight_decay: 0.1, ..Rule::adam(0.01) },
            Rule::FROZEN,
            Rule { one_minus_beta1: 0.2, one_minus_beta2: 0.01, eps: 1e-6, step: 5, ..Rule::adam(0.02) },
        ];
        for (k, r) in rules.iter().enumerate() {
            a.rule(k, r);
        }
        a.args.max_grad_norm = 0.05;
        a.commit();
        for s in 0..3u32 {
            step_both(&mut a);
            assert_eq!(a.rules.map(|r| r.step), [s + 1, 0, s + 6]);
        }
    }
}

#[test]
fn adapt_record_matches_the_drivers() {
    let shape = Shape::new(9, 7, 4);
    let coefficients = LossCoefficients { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 / 9.0 };
    for (flags, e0, lambda) in [(0u32, 0.0f32, 0.0f32), (7, 2.5, 0.4), (3, 3.0, 0.0), (4, 0.0, 1.0)] {
        let mut a = Abi::new(shape, 21, coefficients);
        a.adapt_record(flags, e0, lambda);
        let rules = [Rule::FROZEN, Rule { momentum: 0.9, ..Rule::sgd(0.3) }, Rule::FROZEN];
        for (k, r) in rules.iter().enumerate() {
            a.rule(k, r);
        }
        let record = a.adapt.unwrap().1;
        for call in 0..3 {
            let f = if call == 0 {
                let mut f = a.fixture();
                let t = f.gradients().unwrap();
                assert_eq!(gradients_export(a.at), 0, "flags {flags}");
                assert_eq!((a.results().loss, a.results().entropy), (t.loss, t.entropy));
                f
            } else {
                step_both(&mut a)
            };
            let r = a.results();
            assert_eq!((r.kept, r.diversity_loss), (f.kept, f.diversity_loss));
            let [ws, pos, mean] = &f.adapt_out;
            assert!(same(&get(record.sample_weights, 9), ws) && same(&get(record.positive, 4), pos));
            assert!(same(&get(record.mean, 4), mean));
            if lambda != 0.0 {
                assert!(same(&get(record.running, 4), &f.running));
            }
            assert!(same(&get(a.args.dw, shape.w_len()), &f.dw) && same(&get(a.args.g, shape.w_len()), &f.g));
            if flags & 1 != 0 {
                assert!(r.kept < 9, "the filter skips some samples (E0 {e0})");
            }
        }
    }
}

#[test]
fn adapt_record_statuses() {
    let shape = Shape::new(5, 7, 3);
    let coefficients = LossCoefficients { entropy: 1.0, cross_entropy: 0.0, scale: 0.2 };
    type Edit = fn(&mut Abi);
    fn record(a: &mut Abi) -> &mut AdaptRecord {
        &mut a.adapt.as_mut().unwrap().1
    }
    let cases: Vec<(&str, Edit, u32)> = vec![
        ("unknown flag", |a| record(a).flags = 8, 5),
        ("NaN E0", |a| record(a).max_entropy = f32::NAN, 5),
        ("infinite λ", |a| record(a).diversity = f32::INFINITY, 5),
        ("β = 1", |a| record(a).marginal_momentum = 1.0, 5),
        ("negative β", |a| record(a).marginal_momentum = -0.5, 5),
        ("NaN β", |a| record(a).marginal_momentum = f32::NAN, 5),
        ("prior = 0", |a| record(a).prior = 0, 5),
        ("running overlaps mean", |a| record(a).running = record(a).mean, 5),
        ("marginal misaligned", |a| record(a).marginal += 1, 5),
        ("semi-supervised flag 2", |a| a.args.semi_supervised = 2, 5),
        ("more labelled rows than the batch", |a| (a.args.semi_supervised, a.args.labelled_rows) = (1, 6), 5),
        ("NaN prior", |a| put(record(a).prior, &[f32::NAN]), 4),
        ("record misaligned", |a| a.args.adapt += 2, 5),
        ("record overlaps z", |a| a.args.adapt = a.args.z, 5),
        ("results overlap the record", |a| a.args.results = a.args.adapt, 5),
        ("weights overlap z", |a| record(a).sample_weights = a.args.z, 5),
        ("mean overlaps positive", |a| record(a).mean = record(a).positive, 5),
        ("positive = 0", |a| record(a).positive = 0, 5),
        ("no unit_entropy", |a| a.args.unit_entropy = 0, 5),
        ("no unit_loss", |a| a.args.unit_loss = 0, 5),
        ("EATA weight overflows", |a| record(a).max_entropy = 1e3, 4),
        ("NaN x", |a| put(a.args.x + 8, &[f32::NAN]), 1),
    ];
    for (name, edit, want) in cases {
        let mut a = Abi::new(shape, 3, coefficients);
        let r = Rule { momentum: 0.9, ..Rule::sgd(0.1) };
        for k in 0..3 {
            a.rule(k, &r);
        }
        a.adapt_record(7, 2.0, 0.5);
        edit(&mut a);
        a.commit();
        let before = a.state();
        assert_eq!(step_export(a.at), want, "{name}");
        assert!(a.state() == before, "{name}: parameters, optimizer state or records changed");
        assert_eq!(gradients_export(a.at), want, "{name} (gradients)");
    }
    // forward and objective do not read the adapt record.
    let mut a = Abi::new(shape, 4, coefficients);
    a.args.adapt = 0xFFFF_FFF1;
    a.commit();
    assert_eq!(forward_export(a.at), 0);
    assert_eq!(objective_export(a.at), 0);
}
