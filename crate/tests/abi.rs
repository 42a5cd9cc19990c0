//! The exports themselves, under wasm: the args block and rule records are laid out in this
//! module's own linear memory exactly as TypeScript lays them out, and every export is checked
//! against the Rust drivers (same kernels, so same bits), including status 5 for malformed
//! blocks and check-before-write through the ABI.

#![cfg(target_arch = "wasm32")]

mod common;

use common::Rng;
use entrograd_core::bindings::{
    allocate, entropy_export, forward_export, gradients_export, pack_floats, release, simd, step_export,
};
use entrograd_core::step::{self, entropy_pass, forward_pass};
use entrograd_core::{Layer, Optimizer, Rule, RuleKind, Shape, Weights, Work};
use wasm_bindgen_test::wasm_bindgen_test as test;

fn put(ptr: u32, v: &[f32]) {
    // SAFETY: the test only writes blocks it allocated with at least v.len() floats.
    unsafe { core::slice::from_raw_parts_mut(ptr as usize as *mut f32, v.len()).copy_from_slice(v) }
}
fn get(ptr: u32, n: usize) -> Vec<f32> {
    if n == 0 {
        return vec![];
    }
    // SAFETY: the test only reads blocks it allocated with at least n floats.
    unsafe { core::slice::from_raw_parts(ptr as usize as *const f32, n).to_vec() }
}
fn set_u32(base: u32, slot: usize, v: u32) {
    // SAFETY: base is an args block (32 slots) or rule records (48 slots) this test allocated.
    unsafe { (base as usize as *mut u32).add(slot).write(v) }
}
fn get_u32(base: u32, slot: usize) -> u32 {
    // SAFETY: as for set_u32.
    unsafe { (base as usize as *const u32).add(slot).read() }
}
fn get_f64(base: u32, slot: usize) -> f64 {
    // SAFETY: as for set_u32; slots 24–27 hold two f64s, 8-byte aligned in a 16-aligned block.
    unsafe { (base as usize as *const u32).add(slot).cast::<f64>().read() }
}
fn set_f32(base: u32, slot: usize, v: f32) {
    set_u32(base, slot, v.to_bits());
}

/// A layer laid out in linear memory through `allocate`, as TypeScript does it.
struct Abi {
    shape: Shape,
    args: u32,
    rules: u32,
    blocks: Vec<(u32, u32)>,
}

const X: usize = 3;
const TARGETS: usize = 4;
const W: usize = 5;
const G: usize = 6;
const B: usize = 7;
const Z: usize = 9;
const D: usize = 10;
const DELTA: usize = 11;
const UNITS: usize = 12;
const DW: usize = 13;
const DB: usize = 14;
const RULES: usize = 18;
const UNIT_LOSS: usize = 19;
const PACK: usize = 20;
const PACK_LEN: usize = 21;

impl Abi {
    fn new(shape: Shape, seed: u64, weights: Weights) -> Abi {
        let mut rng = Rng::new(seed);
        let args = allocate(32);
        let rules = allocate(48);
        let mut abi = Abi { shape, args, rules, blocks: vec![(args, 32), (rules, 48)] };
        let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
        set_u32(args, 0, shape.batch as u32);
        set_u32(args, 1, shape.inputs as u32);
        set_u32(args, 2, shape.outputs as u32);
        let r = 1.0 / (shape.inputs as f64).sqrt();
        for (slot, n, range) in [
            (X, xn, 2.0),
            (W, wn, r),
            (G, wn, r),
            (B, on, 0.5),
            (Z, zn, 0.0),
            (D, zn, 0.0),
            (DELTA, zn, 0.0),
            (UNITS, zn, 0.0),
            (DW, wn, 0.0),
            (DB, on, 0.0),
            (UNIT_LOSS, zn, 0.0),
        ] {
            let p = abi.alloc(n);
            put(p, &rng.vec(n, range));
            set_u32(args, slot, p);
        }
        let pn = pack_floats(shape.batch as u32, shape.inputs as u32, shape.outputs as u32);
        assert_eq!(pn as usize, entrograd_core::pack_len(shape).unwrap());
        let p = abi.alloc(pn as usize);
        set_u32(args, PACK, p);
        set_u32(args, PACK_LEN, pn);
        let t = abi.alloc(zn);
        put(t, &rng.targets(zn));
        set_u32(args, TARGETS, t);
        set_f32(args, 15, weights.entropy);
        set_f32(args, 16, weights.cross_entropy);
        set_f32(args, 17, weights.scale);
        set_u32(args, RULES, rules);
        for (k, n) in [wn, wn, on].into_iter().enumerate() {
            let buf = abi.alloc(n);
            put(buf, &rng.vec(n, 0.1));
            set_u32(rules, 16 * k + 6, buf);
            let (m, v) = (abi.alloc(n), abi.alloc(n));
            put(m, &rng.vec(n, 0.01));
            put(v, &rng.vec(n, 0.01).iter().map(|x| x * x).collect::<Vec<f32>>());
            set_u32(rules, 16 * k + 11, m);
            set_u32(rules, 16 * k + 12, v);
        }
        abi
    }
    fn alloc(&mut self, n: usize) -> u32 {
        let p = allocate(n as u32);
        assert!(p != 0 && p.is_multiple_of(16));
        assert!(get(p, n).iter().all(|&v| v == 0.0), "allocate zero-fills");
        self.blocks.push((p, n as u32));
        p
    }
    fn rule(&self, k: usize, r: &Rule) {
        let base = self.rules + 64 * k as u32;
        let kind = match r.kind {
            RuleKind::Frozen => 0,
            RuleKind::Sgd => 1,
            RuleKind::Adam => 2,
        };
        set_u32(base, 0, kind);
        set_f32(base, 1, r.lr);
        set_f32(base, 2, r.weight_decay);
        set_f32(base, 3, r.momentum);
        set_f32(base, 4, r.dampening);
        set_u32(base, 5, r.nesterov as u32);
        set_u32(base, 7, r.buf_ready as u32);
        set_f32(base, 8, r.one_minus_beta1);
        set_f32(base, 9, r.one_minus_beta2);
        set_f32(base, 10, r.eps);
        set_u32(base, 13, r.step);
    }
    fn read_rule(&self, k: usize) -> Rule {
        let base = self.rules + 64 * k as u32;
        Rule {
            kind: step::rule_kind(get_u32(base, 0)).unwrap(),
            lr: f32::from_bits(get_u32(base, 1)),
            weight_decay: f32::from_bits(get_u32(base, 2)),
            momentum: f32::from_bits(get_u32(base, 3)),
            dampening: f32::from_bits(get_u32(base, 4)),
            nesterov: get_u32(base, 5) != 0,
            buf_ready: get_u32(base, 7) != 0,
            one_minus_beta1: f32::from_bits(get_u32(base, 8)),
            one_minus_beta2: f32::from_bits(get_u32(base, 9)),
            eps: f32::from_bits(get_u32(base, 10)),
            step: get_u32(base, 13),
        }
    }
    fn slot(&self, slot: usize) -> u32 {
        get_u32(self.args, slot)
    }
    fn floats(&self, slot: usize, n: usize) -> Vec<f32> {
        get(self.slot(slot), n)
    }
    fn buf(&self, k: usize, n: usize) -> Vec<f32> {
        get(get_u32(self.rules + 64 * k as u32, 6), n)
    }
    /// Adam's exp_avg (slot 11) or exp_avg_sq (slot 12) of parameter k.
    fn moment(&self, k: usize, slot: usize, n: usize) -> Vec<f32> {
        get(get_u32(self.rules + 64 * k as u32, slot), n)
    }
    fn weights(&self) -> Weights {
        Weights {
            entropy: f32::from_bits(self.slot(15)),
            cross_entropy: f32::from_bits(self.slot(16)),
            scale: f32::from_bits(self.slot(17)),
        }
    }
    /// Parameters, buffers, moments, buf_ready and step counts, as bits.
    fn state(&self) -> Vec<Vec<u32>> {
        let (wn, on) = (self.shape.w_len(), self.shape.outputs);
        let mut v: Vec<Vec<u32>> =
            [(W, wn), (G, wn), (B, on)].iter().map(|&(s, n)| common::bits(&self.floats(s, n))).collect();
        for (k, n) in [wn, wn, on].into_iter().enumerate() {
            v.push(common::bits(&self.buf(k, n)));
            v.push(common::bits(&self.moment(k, 11, n)));
            v.push(common::bits(&self.moment(k, 12, n)));
            v.push(vec![get_u32(self.rules + 64 * k as u32, 7), get_u32(self.rules + 64 * k as u32, 13)]);
        }
        v
    }
}

impl Drop for Abi {
    fn drop(&mut self) {
        for &(p, n) in &self.blocks {
            release(p, n);
        }
    }
}

/// The same computation through the Rust drivers, from copies of the block's contents.
struct Mirror {
    x: Vec<f32>,
    y: Vec<f32>,
    w: Vec<f32>,
    g: Vec<f32>,
    b: Vec<f32>,
    pack: Vec<f32>,
    z: Vec<f32>,
    d: Vec<f32>,
    delta: Vec<f32>,
    units: Vec<f32>,
    unit_loss: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
    bufs: [Vec<f32>; 3],
    exp_avg: [Vec<f32>; 3],
    exp_avg_sq: [Vec<f32>; 3],
    rules: [Rule; 3],
}

impl Mirror {
    fn of(a: &Abi) -> Mirror {
        let s = a.shape;
        let (xn, wn, zn, on) = (s.x_len(), s.w_len(), s.z_len(), s.outputs);
        Mirror {
            x: a.floats(X, xn),
            y: a.floats(TARGETS, zn),
            w: a.floats(W, wn),
            g: a.floats(G, wn),
            b: a.floats(B, on),
            pack: vec![0.0; entrograd_core::pack_len(s).unwrap()],
            z: vec![0.0; zn],
            d: vec![0.0; zn],
            delta: vec![0.0; zn],
            units: vec![0.0; zn],
            unit_loss: vec![0.0; zn],
            dw: vec![0.0; wn],
            db: vec![0.0; on],
            bufs: [a.buf(0, wn), a.buf(1, wn), a.buf(2, on)],
            exp_avg: [a.moment(0, 11, wn), a.moment(1, 11, wn), a.moment(2, 11, on)],
            exp_avg_sq: [a.moment(0, 12, wn), a.moment(1, 12, wn), a.moment(2, 12, on)],
            rules: [a.read_rule(0), a.read_rule(1), a.read_rule(2)],
        }
    }
    fn parts(&mut self) -> (Layer<'_>, Work<'_>) {
        (
            Layer { w: &mut self.w, g: &mut self.g, b: &mut self.b },
            Work {
                pack: &mut self.pack,
                z: &mut self.z,
                d: &mut self.d,
                delta: Some(&mut self.delta),
                units: Some(&mut self.units),
                unit_loss: Some(&mut self.unit_loss),
                dw: Some(&mut self.dw),
                db: Some(&mut self.db),
                adapt: None,
            },
        )
    }
}

fn same(a: &[f32], b: &[f32]) -> bool {
    common::bits(a) == common::bits(b)
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

#[test]
fn exports_match_the_drivers() {
    for (i, shape) in [Shape::new(1, 1, 1), Shape::new(5, 17, 3), Shape::new(33, 9, 17), Shape::new(8, 64, 16)]
        .into_iter()
        .enumerate()
    {
        let weights = Weights { entropy: 0.6, cross_entropy: 0.4, scale: 1.0 / shape.batch as f32 };
        let a = Abi::new(shape, i as u64, weights);
        let (wn, zn, on) = (shape.w_len(), shape.z_len(), shape.outputs);

        // forward
        let mut m = Mirror::of(&a);
        let x = m.x.clone();
        {
            let (layer, mut work) = m.parts();
            forward_pass(shape, &x, &layer, &mut work).unwrap();
        }
        assert_eq!(forward_export(a.args), 0);
        assert!(same(&a.floats(Z, zn), &m.z) && same(&a.floats(D, zn), &m.d));

        // entropy (delta written when given, results in slots 24–27)
        let y = m.y.clone();
        let t = {
            let (layer, mut work) = m.parts();
            entropy_pass(shape, &x, Some(&y), &weights, &layer, &mut work).unwrap()
        };
        assert_eq!(entropy_export(a.args), 0);
        assert_eq!((get_f64(a.args, 24), get_f64(a.args, 26)), (t.loss, t.entropy));
        assert!(
            same(&a.floats(UNITS, zn), &m.units)
                && same(&a.floats(UNIT_LOSS, zn), &m.unit_loss)
                && same(&a.floats(DELTA, zn), &m.delta)
        );

        // gradients
        assert_eq!(gradients_export(a.args), 0);
        {
            let (layer, mut work) = m.parts();
            step::gradients_pass(shape, &x, Some(&y), &weights, &layer, &mut work).unwrap();
        }
        assert!(same(&a.floats(DW, wn), &m.dw) && same(&a.floats(DB, on), &m.db));

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
            let mut m = Mirror::of(&a);
            let (x, y, rules) = (m.x.clone(), m.y.clone(), m.rules);
            let [b0, b1, b2] = &mut m.bufs;
            let mut opt = Optimizer { rules, bufs: [Some(b0), Some(b1), Some(b2)], ..Default::default() };
            let mut layer = Layer { w: &mut m.w, g: &mut m.g, b: &mut m.b };
            let mut work = Work {
                pack: &mut m.pack,
                z: &mut m.z,
                d: &mut m.d,
                delta: Some(&mut m.delta),
                units: None,
                unit_loss: None,
                dw: Some(&mut m.dw),
                db: Some(&mut m.db),
                adapt: None,
            };
            let t = step::step(shape, &x, Some(&y), &weights, &mut layer, &mut work, &mut opt).unwrap();
            let ready = opt.rules.map(|r| r.buf_ready as u32);
            assert_eq!(step_export(a.args), 0);
            assert_eq!((get_f64(a.args, 24), get_f64(a.args, 26)), (t.loss, t.entropy));
            assert!(same(&a.floats(W, wn), &m.w) && same(&a.floats(G, wn), &m.g) && same(&a.floats(B, on), &m.b));
            assert!(
                same(&a.buf(0, wn), &m.bufs[0]) && same(&a.buf(1, wn), &m.bufs[1]) && same(&a.buf(2, on), &m.bufs[2])
            );
            assert_eq!([0, 1, 2].map(|k| get_u32(a.rules + 64 * k, 7)), ready);
            assert_eq!(ready, [1, 0, 1]);
        }
        let _ = a.weights();
    }
}

#[test]
fn forward_reads_only_its_slots() {
    let shape = Shape::new(3, 5, 2);
    let a = Abi::new(shape, 9, Weights { entropy: 1.0, cross_entropy: 1.0, scale: 1.0 });
    // Slot 8 (once wsum) is not read by any export.
    for s in [8, TARGETS, DELTA, UNITS, DW, DB, RULES, UNIT_LOSS, 15, 16, 17, 22, 23] {
        set_u32(a.args, s, 0xFFFF_FFF1);
    }
    assert_eq!(forward_export(a.args), 0);
}

#[test]
fn statuses_through_the_abi() {
    let shape = Shape::new(5, 7, 3);
    let weights = Weights { entropy: 0.5, cross_entropy: 0.5, scale: 0.2 };
    type Edit = fn(&Abi);
    let cases: Vec<(&str, Edit, u32)> = vec![
        ("NaN x", |a| put(a.slot(X) + 8, &[f32::NAN]), 1),
        ("Inf target", |a| put(a.slot(TARGETS) + 4 * 14, &[f32::INFINITY]), 2),
        ("target 1.5", |a| put(a.slot(TARGETS), &[1.5]), 3),
        (
            "b update overflows",
            |a| {
                set_f32(a.rules + 128, 1, 1e38);
                set_f32(a.rules + 128, 2, 1e38)
            },
            4,
        ),
        ("x = 0", |a| set_u32(a.args, X, 0), 5),
        ("x misaligned", |a| set_u32(a.args, X, a.slot(X) + 2), 5),
        ("z overlaps d", |a| set_u32(a.args, D, a.slot(Z) + 4), 5),
        ("dw overlaps x", |a| set_u32(a.args, DW, a.slot(X)), 5),
        ("w overlaps the args block", |a| set_u32(a.args, W, a.args), 5),
        ("z beyond memory", |a| set_u32(a.args, Z, ((core::arch::wasm32::memory_size::<0>() * 65536) - 8) as u32), 5),
        ("targets = 0 with αC ≠ 0", |a| set_u32(a.args, TARGETS, 0), 5),
        (
            "Adam without exp_avg_sq",
            |a| {
                set_u32(a.rules + 64, 0, 2);
                set_u32(a.rules + 64, 12, 0)
            },
            5,
        ),
        (
            "Adam's exp_avg overlaps w",
            |a| {
                set_u32(a.rules, 0, 2);
                set_u32(a.rules, 11, a.slot(W))
            },
            5,
        ),
        ("max_grad_norm < 0", |a| set_f32(a.args, 22, -1.0), 5),
        ("max_grad_norm NaN", |a| set_f32(a.args, 22, f32::NAN), 5),
        ("rule kind 7", |a| set_u32(a.rules, 0, 7), 5),
        ("momentum without buffer", |a| set_u32(a.rules + 64, 6, 0), 5),
        ("rules = 0", |a| set_u32(a.args, RULES, 0), 5),
        ("pack = 0", |a| set_u32(a.args, PACK, 0), 5),
        ("pack_len one short", |a| set_u32(a.args, PACK_LEN, a.slot(PACK_LEN) - 1), 5),
        ("pack overlaps z", |a| set_u32(a.args, PACK, a.slot(Z) + 16), 5),
        (
            "sizes overflow",
            |a| {
                set_u32(a.args, 0, 0x8000);
                set_u32(a.args, 1, 0x8000)
            },
            5,
        ),
    ];
    for (name, edit, want) in cases {
        let a = Abi::new(shape, 3, weights);
        let r = Rule { momentum: 0.9, ..Rule::sgd(0.1) };
        for k in 0..3 {
            a.rule(k, &r);
        }
        edit(&a);
        let before = a.state();
        assert_eq!(step_export(a.args), want, "{name}");
        assert!(a.state() == before, "{name}: parameters or optimizer state changed");
        if want != 4 {
            assert!(get_f64(a.args, 24).is_nan() || want == 5, "{name}: results are NaN after a failure");
        }
    }
    assert_eq!(step_export(0), 5);
    assert_eq!(forward_export(4), 5);
    // The entropy export does not need delta, gradients or rules.
    let a = Abi::new(shape, 4, weights);
    for s in [DELTA, DW, DB, RULES, UNITS, UNIT_LOSS] {
        set_u32(a.args, s, 0);
    }
    assert_eq!(entropy_export(a.args), 0);
    assert_eq!(gradients_export(a.args), 5);
}

/// Adam rules, a frozen parameter and clipping (slot 22) through the step export, against the
/// driver; the step counts (slot 13) advance in the records.
#[test]
fn adam_and_clipping_through_the_exports() {
    for (i, shape) in [Shape::new(1, 1, 1), Shape::new(5, 17, 3), Shape::new(8, 64, 16)].into_iter().enumerate() {
        let weights = Weights { entropy: 0.3, cross_entropy: 0.7, scale: 1.0 / shape.batch as f32 };
        let a = Abi::new(shape, 20 + i as u64, weights);
        let (wn, on) = (shape.w_len(), shape.outputs);
        let rules = [
            Rule { weight_decay: 0.1, ..Rule::adam(0.01) },
            Rule::FROZEN,
            Rule { one_minus_beta1: 0.2, one_minus_beta2: 0.01, eps: 1e-6, step: 5, ..Rule::adam(0.02) },
        ];
        for (k, r) in rules.iter().enumerate() {
            a.rule(k, r);
        }
        set_f32(a.args, 22, 0.05);
        for s in 0..3u32 {
            let mut m = Mirror::of(&a);
            let (x, y, rules) = (m.x.clone(), m.y.clone(), m.rules);
            let [m0, m1, m2] = &mut m.exp_avg;
            let [v0, v1, v2] = &mut m.exp_avg_sq;
            let mut opt = Optimizer {
                rules,
                exp_avg: [Some(m0), Some(m1), Some(m2)],
                exp_avg_sq: [Some(v0), Some(v1), Some(v2)],
                max_grad_norm: 0.05,
                ..Default::default()
            };
            let mut layer = Layer { w: &mut m.w, g: &mut m.g, b: &mut m.b };
            let mut work = Work {
                pack: &mut m.pack,
                z: &mut m.z,
                d: &mut m.d,
                delta: Some(&mut m.delta),
                units: None,
                unit_loss: None,
                dw: Some(&mut m.dw),
                db: Some(&mut m.db),
                adapt: None,
            };
            let t = step::step(shape, &x, Some(&y), &weights, &mut layer, &mut work, &mut opt).unwrap();
            let steps = opt.rules.map(|r| r.step);
            assert_eq!(steps, [s + 1, 0, s + 6]);
            assert_eq!(step_export(a.args), 0);
            assert_eq!((get_f64(a.args, 24), get_f64(a.args, 26)), (t.loss, t.entropy));
            assert!(same(&a.floats(W, wn), &m.w) && same(&a.floats(G, wn), &m.g) && same(&a.floats(B, on), &m.b));
            for (k, n) in [wn, wn, on].into_iter().enumerate() {
                assert!(same(&a.moment(k, 11, n), &m.exp_avg[k]) && same(&a.moment(k, 12, n), &m.exp_avg_sq[k]));
            }
            assert_eq!([0, 1, 2].map(|k| get_u32(a.rules + 64 * k, 13)), [s + 1, 0, s + 6]);
        }
    }
}

/// An adapt record (slot 23) laid out as TypeScript lays it out: 16 slots, then the sample
/// weights, positive fractions and mean predictions.
fn adapt_record(a: &mut Abi, flags: u32, max_entropy: f32, diversity: f32) -> u32 {
    let (bn, on) = (a.shape.batch, a.shape.outputs);
    let rec = a.alloc(16);
    set_u32(rec, 0, flags);
    set_f32(rec, 1, max_entropy);
    set_f32(rec, 2, diversity);
    set_u32(rec, 3, a.alloc(bn));
    set_u32(rec, 4, a.alloc(on));
    set_u32(rec, 5, a.alloc(on));
    set_u32(a.args, ADAPT, rec);
    rec
}

const ADAPT: usize = 23;

#[test]
fn adapt_record_matches_the_drivers() {
    use entrograd_core::{Adapt, AdaptWork};
    let shape = Shape::new(9, 7, 4);
    let weights = Weights { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 / 9.0 };
    for (flags, e0, lambda) in [(0u32, 0.0f32, 0.0f32), (7, 2.5, 0.4), (3, 3.0, 0.0), (4, 0.0, 1.0)] {
        let mut a = Abi::new(shape, 21, weights);
        let rec = adapt_record(&mut a, flags, e0, lambda);
        let cfg = Adapt::from_record(flags, e0, lambda).unwrap();
        let rules = [Rule::FROZEN, Rule { momentum: 0.9, ..Rule::sgd(0.3) }, Rule::FROZEN];
        for (k, r) in rules.iter().enumerate() {
            a.rule(k, r);
        }
        for call in 0..3 {
            let mut m = Mirror::of(&a);
            let (x, rules) = (m.x.clone(), m.rules);
            let (mut ws, mut pos, mut mean) = (vec![0.0; 9], vec![0.0; 4], vec![0.0; 4]);
            let [b0, b1, b2] = &mut m.bufs;
            let mut opt = Optimizer { rules, bufs: [Some(b0), Some(b1), Some(b2)], ..Default::default() };
            let mut layer = Layer { w: &mut m.w, g: &mut m.g, b: &mut m.b };
            let mut work = Work {
                pack: &mut m.pack,
                z: &mut m.z,
                d: &mut m.d,
                delta: Some(&mut m.delta),
                units: Some(&mut m.units),
                unit_loss: Some(&mut m.unit_loss),
                dw: Some(&mut m.dw),
                db: Some(&mut m.db),
                adapt: Some(AdaptWork {
                    cfg,
                    weights: &mut ws,
                    positive: &mut pos,
                    mean: &mut mean,
                    kept: 0,
                    diversity_loss: 0.0,
                }),
            };
            let (t, status) = if call == 0 {
                let t = step::gradients_pass(shape, &x, None, &weights, &layer, &mut work).unwrap();
                (t, gradients_export(a.args))
            } else {
                let t = step::step(shape, &x, None, &weights, &mut layer, &mut work, &mut opt).unwrap();
                (t, step_export(a.args))
            };
            assert_eq!(status, 0, "flags {flags} call {call}");
            let (kept, div) = (work.adapt.as_ref().unwrap().kept, work.adapt.as_ref().unwrap().diversity_loss);
            assert_eq!((get_f64(a.args, 24), get_f64(a.args, 26)), (t.loss, t.entropy));
            assert_eq!((get_u32(rec, 6), get_f64(rec, 8)), (kept, div));
            assert!(same(&get(get_u32(rec, 3), 9), &ws) && same(&get(get_u32(rec, 4), 4), &pos));
            assert!(same(&get(get_u32(rec, 5), 4), &mean));
            assert!(same(&a.floats(DW, shape.w_len()), &m.dw) && same(&a.floats(G, shape.w_len()), &m.g));
            if flags & 1 != 0 {
                assert!(kept < 9, "the filter skips some samples (E0 {e0})");
            }
        }
    }
}

#[test]
fn adapt_record_statuses() {
    let shape = Shape::new(5, 7, 3);
    let weights = Weights { entropy: 1.0, cross_entropy: 0.0, scale: 0.2 };
    type Edit = fn(&Abi, u32);
    let cases: Vec<(&str, Edit, u32)> = vec![
        ("unknown flag", |_, r| set_u32(r, 0, 8), 5),
        ("NaN E0", |_, r| set_f32(r, 1, f32::NAN), 5),
        ("infinite λ", |_, r| set_f32(r, 2, f32::INFINITY), 5),
        ("record misaligned", |a, r| set_u32(a.args, ADAPT, r + 4), 5),
        ("record overlaps the args block", |a, _| set_u32(a.args, ADAPT, a.args + 8), 5),
        ("weights overlap z", |a, r| set_u32(r, 3, a.slot(Z)), 5),
        ("mean overlaps positive", |_, r| set_u32(r, 5, get_u32(r, 4)), 5),
        ("positive = 0", |_, r| set_u32(r, 4, 0), 5),
        ("no units", |a, _| set_u32(a.args, UNITS, 0), 5),
        ("no unit_loss", |a, _| set_u32(a.args, UNIT_LOSS, 0), 5),
        ("EATA weight overflows", |_, r| set_f32(r, 1, 1e3), 4),
        ("NaN x", |a, _| put(a.slot(X) + 8, &[f32::NAN]), 1),
    ];
    for (name, edit, want) in cases {
        let mut a = Abi::new(shape, 3, weights);
        let r = Rule { momentum: 0.9, ..Rule::sgd(0.1) };
        for k in 0..3 {
            a.rule(k, &r);
        }
        let rec = adapt_record(&mut a, 7, 2.0, 0.5);
        edit(&a, rec);
        let before = a.state();
        assert_eq!(step_export(a.args), want, "{name}");
        assert!(a.state() == before, "{name}: parameters or optimizer state changed");
        assert_eq!(gradients_export(a.args), want, "{name} (gradients)");
    }
    // forward and entropy do not read slot 23.
    let a = Abi::new(shape, 4, weights);
    set_u32(a.args, ADAPT, 0xFFFF_FFF1);
    assert_eq!(forward_export(a.args), 0);
    assert_eq!(entropy_export(a.args), 0);
}
