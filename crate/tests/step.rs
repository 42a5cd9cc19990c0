//! The drivers behind the exports (`step::{forward_pass, objective_pass, gradients_pass, step}`)
//! with whichever kernels this build dispatches to, against the f64 reference: the fused
//! step, momentum/Nesterov/decay over several steps, frozen rules, statuses, and
//! check-before-write.

mod common;

use common::{bits, ref_adam, ref_pass, ref_sgd, Fixture, EPS};
use entrograd_core::step::{self, forward_pass, gradients_pass, objective_pass};
use entrograd_core::{Error, Input, LossCoefficients, Rule, RuleKind, Shape};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts this thread's allocations, to show the drivers allocate nothing.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; the counter is a const-initialised
// thread-local without destructor, so touching it does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> usize {
    ALLOCS.with(|c| c.get())
}

/// One step against the reference pass + reference SGD from the same f32 state.
fn check_step(f: &mut Fixture) {
    let before = f.clone();
    let r = ref_pass(f.shape, &f.x, f.targets(), &f.w, &f.g, &f.b, &f.coefficients);
    let totals = f.step().expect("step");
    assert!((totals.loss - r.loss).abs() <= 1e-5 * r.loss_mag + 1e-12, "loss {} vs {}", totals.loss, r.loss);
    assert!((totals.entropy - r.entropy).abs() <= 1e-5 * r.entropy.abs() + 1e-12);
    let grads = [(&r.dw, &r.dw_mag), (&r.dw, &r.dw_mag), (&r.db, &r.db_mag)];
    let params = [(&before.w, &f.w), (&before.g, &f.g), (&before.b, &f.b)];
    for k in 0..3 {
        let rule = before.rules[k];
        let (old, new) = params[k];
        if rule.kind == RuleKind::Frozen {
            assert_eq!(bits(old), bits(new), "frozen param {k} changed");
            assert_eq!(bits(&before.bufs[k]), bits(&f.bufs[k]), "frozen buffer {k} changed");
            assert_eq!(f.rules[k].buf_ready, rule.buf_ready);
            continue;
        }
        // The reference update from the reference gradient (rounded to f32 like the kernel's).
        let (g, gm) = grads[k];
        let g32: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        let (want, want_buf, mag) = ref_sgd(old, &g32, Some(&before.bufs[k]), &rule);
        let amp = 1.0 + rule.momentum.abs() as f64 * 2.0;
        for i in 0..old.len() {
            // f32 rounding of the update, plus the gradient's own error scaled by lr.
            let tol = 6.0 * EPS * mag[i] + rule.lr as f64 * amp * (1e-5 * gm[i] + 1e-6 * g[i].abs()) + 1e-12;
            let err = (new[i] as f64 - want[i]).abs();
            assert!(err <= tol, "param {k}[{i}] {:?}: {} vs {} (err {err:e} > {tol:e})", rule, new[i], want[i]);
        }
        match want_buf {
            Some(wb) => {
                assert!(f.rules[k].buf_ready);
                for i in 0..wb.len() {
                    let tol = 6.0 * EPS * (wb[i].abs() + mag[i]) + amp * (1e-5 * gm[i] + 1e-6 * g[i].abs()) + 1e-12;
                    assert!((f.bufs[k][i] as f64 - wb[i]).abs() <= tol, "buf {k}[{i}]");
                }
            }
            None => {
                assert_eq!(bits(&before.bufs[k]), bits(&f.bufs[k]), "unused buffer {k} changed");
                assert_eq!(f.rules[k].buf_ready, rule.buf_ready);
            }
        }
    }
}

#[test]
fn step_matches_reference_over_several_steps() {
    let plain = Rule::sgd(0.1);
    let configs: Vec<[Rule; 3]> = vec![
        [plain; 3],
        [
            Rule { momentum: 0.9, ..plain },
            Rule { momentum: 0.8, nesterov: true, weight_decay: 0.01, ..plain },
            Rule { weight_decay: 0.05, ..plain },
        ],
        [
            Rule { momentum: 0.9, dampening: 0.5, ..plain },
            Rule::FROZEN,
            Rule { momentum: 0.5, nesterov: true, ..plain },
        ],
        [Rule::FROZEN, Rule { momentum: 0.9, weight_decay: 1e-3, ..Rule::sgd(0.3) }, Rule::FROZEN],
    ];
    let shapes = [
        Shape::new(1, 1, 1),
        Shape::new(3, 5, 17),
        Shape::new(17, 33, 5),
        Shape::new(33, 257, 3),
        Shape::new(8, 16, 8),
    ];
    for (c, rules) in configs.iter().enumerate() {
        for (s, &shape) in shapes.iter().enumerate() {
            for coefficients in [
                LossCoefficients { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 / shape.batch as f32 },
                LossCoefficients { entropy: 0.6, cross_entropy: 0.4, scale: 1.0 },
            ] {
                let mut f = Fixture::new(shape, (c * 10 + s) as u64);
                f.rules = *rules;
                f.coefficients = coefficients;
                for _ in 0..3 {
                    check_step(&mut f);
                }
            }
        }
    }
}

#[test]
fn training_lowers_the_entropy() {
    let mut f = Fixture::new(Shape::new(32, 12, 6), 5);
    f.coefficients = LossCoefficients { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 / 32.0 };
    f.rules = [Rule { momentum: 0.9, ..Rule::sgd(0.5) }, Rule::FROZEN, Rule { momentum: 0.9, ..Rule::sgd(0.5) }];
    let first = f.step().unwrap().entropy;
    let mut last = first;
    for _ in 0..50 {
        last = f.step().unwrap().entropy;
    }
    assert!(last < 0.5 * first, "entropy {first} -> {last}");
}

#[test]
fn unit_entropy_unit_loss_and_totals() {
    let mut f = Fixture::new(Shape::new(5, 7, 3), 11);
    let t = f.objective().unwrap();
    let s = f.coefficients.scale as f64;
    let su: f64 = f.unit_entropy.iter().map(|&v| v as f64).sum();
    let sl: f64 = f.unit_loss.iter().map(|&v| v as f64).sum();
    assert!((t.entropy - s * su).abs() < 1e-9 && (t.loss - s * sl).abs() < 1e-9);
    for i in 0..f.z.len() {
        assert_eq!(f.unit_entropy[i], entropy_of(f.z[i]));
    }
}

fn entropy_of(z: f32) -> f32 {
    entrograd_core::entropy_bits(z)
}

#[test]
fn statuses_and_nothing_written_on_failure() {
    let shape = Shape::new(5, 9, 3);
    let rules = [
        Rule { momentum: 0.9, ..Rule::sgd(0.1) },
        Rule { momentum: 0.9, buf_ready: true, ..Rule::sgd(0.1) },
        Rule::sgd(0.1),
    ];
    type Edit = fn(&mut Fixture);
    let cases: Vec<(&str, Edit, Error)> = vec![
        ("NaN x", |f| f.x[44] = f32::NAN, Error::NonFiniteInput),
        ("Inf x", |f| f.x[0] = f32::NEG_INFINITY, Error::NonFiniteInput),
        ("NaN target", |f| f.y[14] = f32::NAN, Error::NonFiniteTarget),
        ("Inf target", |f| f.y[3] = f32::INFINITY, Error::NonFiniteTarget),
        ("target 1.5", |f| f.y[14] = 1.5, Error::TargetOutOfRange),
        ("target -0.1", |f| f.y[0] = -0.1, Error::TargetOutOfRange),
        (
            "NaN x and target 2",
            |f| {
                f.x[3] = f32::NAN;
                f.y[2] = 2.0
            },
            Error::NonFiniteInput,
        ),
        ("z overflows", |f| f.w.iter_mut().for_each(|v| *v = 3e38), Error::NonFiniteResult),
        (
            "b update overflows",
            |f| {
                f.rules[2] = Rule { lr: 1e10, weight_decay: 1e30, ..Rule::sgd(0.1) };
            },
            Error::NonFiniteResult,
        ),
        (
            "g buffer overflows",
            |f| {
                f.rules[1].momentum = 2.0;
                f.bufs[1][5] = 3e38
            },
            Error::NonFiniteResult,
        ),
        ("no targets for cross-entropy", |f| f.y.clear(), Error::InvalidArgs),
    ];
    for (name, edit, want) in cases {
        let mut f = Fixture::new(shape, 1);
        f.rules = rules;
        edit(&mut f);
        let state = f.state();
        let got = f.step();
        assert_eq!(got, Err(want), "{name}");
        assert!(f.state() == state, "{name}: state changed on failure");
        if want != Error::NonFiniteResult || name == "z overflows" {
            let mut g = Fixture::new(shape, 1);
            g.rules = rules;
            edit(&mut g);
            // Updates are not the gradients' business: only `z overflows` fails there.
            assert_eq!(g.gradients(), Err(want), "{name} (gradients)");
            assert_eq!(g.objective(), Err(want), "{name} (objective)");
        }
    }
    // αC = 0: targets are neither read nor checked.
    let mut f = Fixture::new(shape, 1);
    f.coefficients.cross_entropy = 0.0;
    f.y.iter_mut().for_each(|v| *v = f32::NAN);
    assert!(f.step().is_ok());
    // forward: 1 for a non-finite x, 4 for an overflowing z.
    let mut f = Fixture::new(shape, 1);
    assert_eq!(f.forward(), Ok(()));
    f.x[7] = f32::INFINITY;
    assert_eq!(f.forward(), Err(Error::NonFiniteInput));
    let mut f = Fixture::new(shape, 1);
    f.g.iter_mut().for_each(|v| *v = -3e38);
    assert_eq!(f.forward(), Err(Error::NonFiniteResult));
}

/// The rules are input only: a step leaves them as they were (after a success TypeScript sets
/// `buf_ready` and advances the step counts; `Fixture::step` does what it does).
#[test]
fn step_leaves_the_rules_alone() {
    let mut f = Fixture::new(Shape::new(4, 5, 3), 12);
    let rules = [Rule { momentum: 0.9, ..Rule::sgd(0.1) }, Rule { step: 3, ..Rule::adam(0.01) }, Rule::FROZEN];
    f.rules = rules;
    let (shape, coefficients, x, y) = (f.shape, f.coefficients, f.x.clone(), f.y.clone());
    let (mut layer, mut work, mut opt) = f.parts();
    step::step(
        &Input { shape, x: &x, targets: Some(&y), coefficients, labelled: None },
        &mut layer,
        &mut work,
        &mut opt,
    )
    .unwrap();
    assert_eq!(opt.rules, rules);
}

#[test]
fn momentum_without_buffer_is_invalid() {
    let mut f = Fixture::new(Shape::new(2, 3, 4), 2);
    f.rules = [Rule::sgd(0.1), Rule { momentum: 0.9, ..Rule::sgd(0.1) }, Rule::sgd(0.1)];
    let (shape, coefficients, x, y) = (f.shape, f.coefficients, f.x.clone(), f.y.clone());
    let before = f.state();
    let (mut layer, mut work, mut opt) = f.parts();
    opt.bufs[1] = None;
    let r = step::step(
        &Input { shape, x: &x, targets: Some(&y), coefficients, labelled: None },
        &mut layer,
        &mut work,
        &mut opt,
    );
    assert_eq!(r, Err(Error::InvalidArgs));
    assert!(f.state() == before);
    assert_eq!(RuleKind::from_code(2), Some(RuleKind::Adam));
    assert_eq!(RuleKind::from_code(3), None);
}

#[test]
fn empty_batch() {
    let mut f = Fixture::new(Shape::new(0, 4, 3), 4);
    f.coefficients.scale = 1.0;
    f.rules = [Rule { weight_decay: 0.5, ..Rule::sgd(0.1) }, Rule::sgd(0.1), Rule::sgd(0.1)];
    let (g, b) = (f.g.clone(), f.b.clone());
    let w: Vec<f32> = f.w.iter().map(|&v| v - 0.1 * (0.0 + 0.5 * v)).collect();
    let t = f.step().unwrap();
    assert_eq!((t.loss, t.entropy), (0.0, 0.0));
    assert_eq!((bits(&f.w), bits(&f.g), bits(&f.b)), (bits(&w), bits(&g), bits(&b)));
}

#[test]
fn drivers_do_not_allocate() {
    let mut f = Fixture::new(Shape::new(17, 33, 9), 8);
    f.rules = [
        Rule { momentum: 0.9, nesterov: true, ..Rule::sgd(0.1) },
        Rule::sgd(0.1),
        Rule { momentum: 0.5, ..Rule::sgd(0.1) },
    ];
    let (shape, coefficients, x, y) = (f.shape, f.coefficients, f.x.clone(), f.y.clone());
    let mut xb = x.clone();
    xb[40] = f32::NAN;
    let (mut layer, mut work, mut opt) = f.parts();
    let input = Input { shape, x: &x, targets: Some(&y), coefficients, labelled: None };
    let before = allocations();
    for _ in 0..3 {
        forward_pass(&input, &layer, &mut work).unwrap();
        objective_pass(&input, &layer, &mut work).unwrap();
        gradients_pass(&input, &layer, &mut work).unwrap();
        step::step(&input, &mut layer, &mut work, &mut opt).unwrap();
    }
    // A failing step (non-finite x) takes the rare scanning path: still no allocation.
    let mid = allocations();
    assert!(step::step(&Input { x: &xb, ..input }, &mut layer, &mut work, &mut opt).is_err());
    assert_eq!(allocations() - mid, 0);
    assert_eq!(mid - before, 0);
}

/// Adam steps (decoupled decay, groups, a frozen parameter) against the reference from the same
/// f32 state; the step counts advance only for the Adam rules.
#[test]
fn adam_step_matches_reference() {
    let adam = Rule::adam(0.01);
    let configs: Vec<[Rule; 3]> = vec![
        [adam; 3],
        [Rule::FROZEN, Rule { weight_decay: 0.1, ..Rule::adam(0.002) }, Rule { step: 7, ..adam }],
        [Rule { momentum: 0.9, ..Rule::sgd(0.1) }, Rule { one_minus_beta1: 0.2, eps: 1e-6, ..adam }, Rule::FROZEN],
    ];
    for (c, rules) in configs.iter().enumerate() {
        for shape in [Shape::new(1, 1, 1), Shape::new(3, 5, 17), Shape::new(17, 33, 5)] {
            let mut f = Fixture::new(shape, 40 + c as u64);
            f.rules = *rules;
            for _ in 0..3 {
                let before = f.clone();
                let r = ref_pass(f.shape, &f.x, f.targets(), &f.w, &f.g, &f.b, &f.coefficients);
                f.step().expect("step");
                let params = [(&before.w, &f.w), (&before.g, &f.g), (&before.b, &f.b)];
                let grads = [(&r.dw, &r.dw_mag), (&r.dw, &r.dw_mag), (&r.db, &r.db_mag)];
                for k in 0..3 {
                    let rule = before.rules[k];
                    let (old, new) = params[k];
                    match rule.kind {
                        RuleKind::Adam => {
                            assert_eq!(f.rules[k].step, rule.step + 1);
                            let g32: Vec<f32> = grads[k].0.iter().map(|&v| v as f32).collect();
                            let (want, _, _, mag) =
                                ref_adam(old, &g32, &before.exp_avg[k], &before.exp_avg_sq[k], &rule);
                            for i in 0..old.len() {
                                // The step divides by √v: a gradient error δ moves it by ~lr·δ/|g|.
                                let rel = grads[k].1[i] / (grads[k].0[i].abs() + 1e-3);
                                let tol = 16.0 * EPS * mag[i] + rule.lr as f64 * 1e-4 * rel + 1e-7;
                                let err = (new[i] as f64 - want[i]).abs();
                                assert!(
                                    err <= tol,
                                    "adam param {k}[{i}]: {} vs {} ({err:e} > {tol:e})",
                                    new[i],
                                    want[i]
                                );
                            }
                        }
                        RuleKind::Frozen => {
                            assert_eq!(bits(old), bits(new));
                            assert_eq!(f.rules[k], rule);
                        }
                        RuleKind::Sgd => assert_eq!(f.rules[k].step, 0),
                    }
                    if rule.kind != RuleKind::Adam {
                        assert_eq!(bits(&before.exp_avg[k]), bits(&f.exp_avg[k]), "moments of {k} untouched");
                        assert_eq!(bits(&before.exp_avg_sq[k]), bits(&f.exp_avg_sq[k]));
                    }
                }
            }
        }
    }
}

/// Clipping scales the gradient by min(max/(norm + 1e-6), 1) before the update, with the norm
/// over the updated parameters only (dw counted once per updated w or g).
#[test]
fn clipping_scales_the_gradient_over_updated_parameters() {
    let shape = Shape::new(6, 7, 3);
    for rules in [
        [Rule::sgd(0.1); 3],
        [Rule::FROZEN, Rule::sgd(0.1), Rule::sgd(0.1)],
        [Rule::sgd(0.1), Rule::sgd(0.1), Rule::FROZEN],
        [Rule::FROZEN, Rule::FROZEN, Rule::sgd(0.1)],
    ] {
        let mut f = Fixture::new(shape, 9);
        f.rules = rules;
        f.gradients().unwrap();
        let (dw, db) = (f.dw.clone(), f.db.clone());
        let sq = |v: &[f32]| v.iter().map(|&x| x as f64 * x as f64).sum::<f64>();
        let shared = (rules[0].kind != RuleKind::Frozen) as u32 + (rules[1].kind != RuleKind::Frozen) as u32;
        let norm = (shared as f64 * sq(&dw) + if rules[2].kind != RuleKind::Frozen { sq(&db) } else { 0.0 }).sqrt();
        for (max, clipped) in [(norm as f32 * 0.25, true), (norm as f32 * 4.0, false)] {
            let mut c = Fixture::new(shape, 9);
            c.rules = rules;
            c.max_grad_norm = max;
            c.step().unwrap();
            let coef = if clipped { (max as f64 / (norm + 1e-6)) as f32 } else { 1.0 };
            // The same step with the gradient scaled by hand.
            let mut w = Fixture::new(shape, 9);
            let scaled = |v: &[f32]| v.iter().map(|&x| x * coef).collect::<Vec<f32>>();
            let (sdw, sdb) = (scaled(&dw), scaled(&db));
            let params = [&mut w.w, &mut w.g, &mut w.b];
            for (k, p) in params.into_iter().enumerate() {
                let g = if k == 2 { &sdb } else { &sdw };
                entrograd_core::sgd_update(p, g, None, &rules[k], true);
            }
            assert_eq!((bits(&c.w), bits(&c.g), bits(&c.b)), (bits(&w.w), bits(&w.g), bits(&w.b)), "max {max}");
            // dw/db are scratch: clipping scaled them in place.
            assert_eq!(bits(&c.dw), bits(&sdw));
        }
    }
    // An invalid threshold is a malformed call.
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let mut f = Fixture::new(shape, 9);
        f.max_grad_norm = bad;
        let state = f.state();
        assert_eq!(f.step(), Err(Error::InvalidArgs));
        assert!(f.state() == state);
    }
}

#[test]
fn adam_needs_its_moments_and_writes_nothing_on_failure() {
    let mut f = Fixture::new(Shape::new(2, 3, 4), 2);
    f.rules = [Rule::adam(0.1), Rule::adam(0.1), Rule::adam(0.1)];
    let (shape, coefficients, x, y) = (f.shape, f.coefficients, f.x.clone(), f.y.clone());
    let before = f.state();
    let (mut layer, mut work, mut opt) = f.parts();
    opt.exp_avg_sq[2] = None;
    let r = step::step(
        &Input { shape, x: &x, targets: Some(&y), coefficients, labelled: None },
        &mut layer,
        &mut work,
        &mut opt,
    );
    assert_eq!(r, Err(Error::InvalidArgs));
    assert!(f.state() == before);
    // An update that overflows in the last parameter leaves every parameter, moment and count.
    let mut f = Fixture::new(Shape::new(2, 3, 4), 2);
    f.rules = [Rule::adam(0.1), Rule::adam(0.1), Rule { weight_decay: 1e30, lr: 1e10, ..Rule::adam(0.1) }];
    let before = f.state();
    assert_eq!(f.step(), Err(Error::NonFiniteResult));
    assert!(f.state() == before);
}

/// The semi-supervised loss in f64 at weights `w` (= W + G): rows `0..labelled` take
/// `αC·CE` alone, the others `αE·H` alone, all scaled by the whole batch's `scale`. Returns the
/// loss, `dw` and `db`.
fn semi_ref(f: &Fixture, wsum: &[f64], labelled: usize) -> (f64, Vec<f64>, Vec<f64>) {
    let Shape { batch, inputs, outputs } = f.shape;
    let c = f.coefficients;
    let (mut loss, mut dw, mut db) = (0.0, vec![0.0; outputs * inputs], vec![0.0; outputs]);
    for n in 0..batch {
        let unit = if n < labelled {
            LossCoefficients { entropy: 0.0, ..c }
        } else {
            LossCoefficients { cross_entropy: 0.0, ..c }
        };
        for o in 0..outputs {
            let mut z = f.b[o] as f64;
            for i in 0..inputs {
                z += f.x[n * inputs + i] as f64 * wsum[o * inputs + i];
            }
            let y = if n < labelled { f.y[n * outputs + o] as f64 } else { 0.0 };
            let r = common::ref_unit(z, common::ref_sigmoid(z), y, &unit);
            loss += c.scale as f64 * r.loss;
            db[o] += r.delta;
            for i in 0..inputs {
                dw[o * inputs + i] += r.delta * f.x[n * inputs + i] as f64;
            }
        }
    }
    (loss, dw, db)
}

#[test]
fn semi_supervised_rows() {
    let shape = Shape::new(7, 5, 3);
    for labelled in [0, 3, 7] {
        let mut f = Fixture::new(shape, 40 + labelled as u64);
        f.coefficients = LossCoefficients { entropy: 0.4, cross_entropy: 1.0, scale: 1.0 / 7.0 };
        f.labelled = Some(labelled);
        // The unlabelled rows' targets are never read: NaN there changes nothing.
        for k in labelled * shape.outputs..f.y.len() {
            f.y[k] = f32::NAN;
        }
        let t = f.gradients().expect("gradients");
        let wsum: Vec<f64> = f.w.iter().zip(&f.g).map(|(&a, &b)| (a + b) as f64).collect();
        let (loss, dw, db) = semi_ref(&f, &wsum, labelled);
        assert!((t.loss - loss).abs() <= 1e-5 * (loss.abs() + 1.0), "L = {labelled}: loss {} vs {loss}", t.loss);
        for (k, (&got, &want)) in f.dw.iter().zip(&dw).enumerate() {
            assert!((got as f64 - want).abs() <= 1e-5 * (want.abs() + 0.1), "L = {labelled}: dw[{k}]");
        }
        for (o, (&got, &want)) in f.db.iter().zip(&db).enumerate() {
            assert!((got as f64 - want).abs() <= 1e-5 * (want.abs() + 0.1), "L = {labelled}: db[{o}]");
        }
        // The reference gradient is the derivative of the reference loss.
        for k in [0, 7, dw.len() - 1] {
            let h = 1e-6;
            let (mut p, mut m) = (wsum.clone(), wsum.clone());
            p[k] += h;
            m[k] -= h;
            let fd = (semi_ref(&f, &p, labelled).0 - semi_ref(&f, &m, labelled).0) / (2.0 * h);
            assert!((fd - dw[k]).abs() <= 1e-6 * (dw[k].abs() + 1.0), "L = {labelled}: dW[{k}] {} vs fd {fd}", dw[k]);
        }
    }
    // More labelled rows than targets (or the batch): InvalidArgs.
    let mut f = Fixture::new(shape, 41);
    f.coefficients = LossCoefficients { entropy: 0.4, cross_entropy: 1.0, scale: 1.0 / 7.0 };
    f.labelled = Some(3);
    f.y.truncate(2 * shape.outputs);
    assert_eq!(f.gradients().err(), Some(Error::InvalidArgs));
}
