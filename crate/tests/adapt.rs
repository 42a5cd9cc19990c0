//! The test-time adaptation pass (`adapt.rs`) against an f64 reference written from its
//! formulas: alone (filter, EATA weights, the prior-matched diversity term on a running
//! marginal, metrics), inside the drivers
//! (`gradients_pass`, `step`), with the reference's own gradient checked by finite differences
//! of the adaptation loss; statuses, check-before-write and no allocation.

// Index loops read like the formulas they check.
#![allow(clippy::needless_range_loop)]

mod common;

use common::{bits, ref_sigmoid, ref_unit, Fixture, Rng, EPS};
use entrograd_core::abi::AdaptRecord;
use entrograd_core::adapt::{adapt, bernoulli_kl, P_MIN};
use entrograd_core::math::sigmoid;
use entrograd_core::step::gradients_pass;
use entrograd_core::{entropy_bits, Adapt, AdaptWork, Error, Input, LossCoefficients, Rule, Shape};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const LN2: f64 = std::f64::consts::LN_2;

/// σ(1−σ) in f64, without cancellation.
fn slope(z: f64) -> f64 {
    let e = (-z.abs()).exp();
    e / ((1.0 + e) * (1.0 + e))
}

/// The configurations every check runs: filter, EATA, mean or sum, with and without diversity
/// (this batch alone, or a running marginal with momentum 0.6).
fn configs(e0: f32) -> Vec<Adapt> {
    let mut v = Vec::new();
    for (filter, eata) in [(false, false), (true, false), (true, true), (false, true)] {
        for mean in [true, false] {
            for (diversity, marginal_momentum) in [(0.0, 0.0), (0.7, 0.0), (0.7, 0.6)] {
                v.push(Adapt { filter, eata, mean, max_entropy: e0, diversity, marginal_momentum });
            }
        }
    }
    v
}

/// A prior and a running marginal for `outputs` outputs: away from each other, inside (0, 1),
/// one prior of exactly 0 (its KL term is then −log2(1 − p̄)).
fn prior_and_marginal(outputs: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let prior: Vec<f32> = (0..outputs).map(|o| if o == 1 { 0.0 } else { 0.05 + 0.4 * (o % 3) as f32 }).collect();
    let marginal: Vec<f32> = (0..outputs).map(|_| 0.5 + rng.sym(0.45)).collect();
    (prior, marginal)
}

/// A threshold in the widest gap between the sample entropies near their median, so no
/// sample sits within rounding of it (kernel and reference then keep the same samples).
fn threshold(h: &[f64]) -> f32 {
    let mut s = h.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.len() < 2 {
        return (s[0] + 0.25) as f32;
    }
    let lo = s.len() / 4;
    let hi = (3 * s.len() / 4).max(lo + 1).min(s.len() - 1);
    let mut best = (0.0, s[lo]);
    for i in lo..hi {
        let gap = s[i + 1] - s[i];
        if gap > best.0 {
            best = (gap, 0.5 * (s[i] + s[i + 1]));
        }
    }
    best.1 as f32
}

/// What the pass should produce, in f64, from the same f32 inputs.
struct PassRef {
    weights: Vec<f64>,
    kept: u32,
    mean: Vec<f64>,
    positive: Vec<f64>,
    running: Vec<f64>,
    delta: Vec<f64>,
    delta_mag: Vec<f64>,
    loss: f64,
    loss_mag: f64,
    diversity: f64,
}

#[allow(clippy::too_many_arguments)]
fn ref_adapt(
    shape: Shape,
    z: &[f64],
    d: &[f64],
    unit_entropy: &[f64],
    unit_loss: &[f64],
    delta: &[f64],
    scale: f64,
    c: &Adapt,
    prior: &[f64],
    marginal: &[f64],
) -> PassRef {
    let (bn, on) = (shape.batch, shape.outputs);
    let e0 = c.max_entropy as f64;
    let mut weights = vec![0.0; bn];
    let mut kept = 0;
    let mut per_sample_loss = vec![0.0; bn];
    for n in 0..bn {
        let h: f64 = (0..on).map(|o| unit_entropy[n * on + o]).sum();
        per_sample_loss[n] = (0..on).map(|o| unit_loss[n * on + o]).sum();
        let keep = !c.filter || h <= e0;
        kept += keep as u32;
        weights[n] = if !keep {
            0.0
        } else if c.eata {
            1.0 / (h - e0).exp()
        } else {
            1.0
        };
    }
    let s_kept = if !c.mean {
        1.0
    } else if kept == 0 {
        0.0
    } else {
        1.0 / kept as f64
    };
    let (lambda, beta) = (c.diversity as f64, c.marginal_momentum as f64);
    let mut mean = vec![0.0; on];
    let mut positive = vec![0.0; on];
    let mut running = vec![0.0; on];
    let mut div = 0.0;
    let mut coef = vec![0.0; on];
    for o in 0..on {
        mean[o] = (0..bn).map(|n| d[n * on + o]).sum::<f64>() / bn as f64;
        positive[o] = (0..bn).filter(|&n| d[n * on + o] > 0.5).count() as f64 / bn as f64;
        if lambda != 0.0 {
            // p̄ = β·p̄⁻ + (1−β)·m; KL(π‖p) = π·ln(π/p) + (1−π)·ln((1−π)/(1−p)), over ln 2;
            // ∂KL/∂p = (−π/p + (1−π)/(1−p))/ln 2; ∂p̄/∂z[n,o] = (1−β)·σ'/B (p̄⁻ constant).
            running[o] = beta * marginal[o] + (1.0 - beta) * mean[o];
            let (pi, p) = (prior[o], running[o].clamp(P_MIN, 1.0 - P_MIN));
            let xlogy = |a: f64, b: f64| if a == 0.0 { 0.0 } else { a * (a / b).ln() };
            div += (xlogy(pi, p) + xlogy(1.0 - pi, 1.0 - p)) / LN2;
            let dkl = (-pi / p + (1.0 - pi) / (1.0 - p)) / LN2;
            coef[o] = lambda * bn as f64 * scale * dkl * (1.0 - beta) / bn as f64;
        }
    }
    let mut out = vec![0.0; bn * on];
    let mut mag = vec![0.0; bn * on];
    let mut loss_mag = 0.0;
    for n in 0..bn {
        loss_mag += weights[n] * s_kept * (0..on).map(|o| unit_loss[n * on + o].abs()).sum::<f64>();
        for o in 0..on {
            let k = n * on + o;
            let a = weights[n] * s_kept / scale * delta[k];
            let b = coef[o] * slope(z[k]);
            out[k] = a + b;
            mag[k] = a.abs() + b.abs();
        }
    }
    let diversity = lambda * bn as f64 * scale * div;
    let loss = s_kept * (0..bn).map(|n| weights[n] * per_sample_loss[n]).sum::<f64>() + diversity;
    PassRef {
        weights,
        kept,
        mean,
        positive,
        running,
        delta: out,
        delta_mag: mag,
        loss,
        loss_mag: loss_mag + diversity.abs(),
        diversity,
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Output buffers for one pass, and the diversity term's prior and marginal.
struct Outs {
    weights: Vec<f32>,
    positive: Vec<f32>,
    mean: Vec<f32>,
    prior: Vec<f32>,
    marginal: Vec<f32>,
    running: Vec<f32>,
}

impl Outs {
    fn new(shape: Shape) -> Outs {
        Outs {
            weights: vec![f32::NAN; shape.batch],
            positive: vec![f32::NAN; shape.outputs],
            mean: vec![f32::NAN; shape.outputs],
            prior: vec![0.1; shape.outputs],
            marginal: vec![0.1; shape.outputs],
            running: vec![f32::NAN; shape.outputs],
        }
    }
    fn work(&mut self, cfg: Adapt) -> AdaptWork<'_> {
        AdaptWork {
            cfg,
            sample_weights: &mut self.weights,
            positive: &mut self.positive,
            mean: &mut self.mean,
            prior: &self.prior,
            marginal: &self.marginal,
            running: &mut self.running,
            kept: u32::MAX,
            diversity_loss: f64::NAN,
        }
    }
}

#[test]
fn pass_matches_the_reference() {
    let mut rng = Rng::new(61);
    let shapes = [
        Shape::new(1, 1, 1),
        Shape::new(2, 1, 3),
        Shape::new(7, 1, 10),
        Shape::new(33, 1, 4),
        Shape::new(64, 1, 10),
        Shape::new(5, 1, 257),
    ];
    for shape in shapes {
        let n = shape.z_len();
        let z: Vec<f32> = (0..n).map(|_| rng.sym(6.0)).collect();
        let d: Vec<f32> = z.iter().map(|&v| sigmoid(v)).collect();
        let entropy: Vec<f32> = z.iter().map(|&v| entropy_bits(v)).collect();
        let y = rng.targets(n);
        let wts = LossCoefficients { entropy: 0.8, cross_entropy: 0.2, scale: 1.0 };
        let unit_loss: Vec<f32> =
            (0..n).map(|k| ref_unit(z[k] as f64, d[k] as f64, y[k] as f64, &wts).loss as f32).collect();
        let delta0 = rng.vec(n, 0.3);
        let h: Vec<f64> =
            (0..shape.batch).map(|s| (0..shape.outputs).map(|o| entropy[s * shape.outputs + o] as f64).sum()).collect();
        let e0 = threshold(&h);
        for scale in [1.0 / shape.batch as f32, 1.0] {
            for cfg in configs(e0) {
                let what = format!("{shape:?} {cfg:?} scale {scale}");
                let mut delta = delta0.clone();
                let mut outs = Outs::new(shape);
                (outs.prior, outs.marginal) = prior_and_marginal(shape.outputs, &mut rng);
                let (prior, marginal) = (f64s(&outs.prior), f64s(&outs.marginal));
                let mut work = outs.work(cfg);
                let loss = adapt(shape, &z, &d, &entropy, &unit_loss, &mut delta, scale, &mut work);
                let (kept, div) = (work.kept, work.diversity_loss);
                let r = ref_adapt(
                    shape,
                    &f64s(&z),
                    &f64s(&d),
                    &f64s(&entropy),
                    &f64s(&unit_loss),
                    &f64s(&delta0),
                    scale as f64,
                    &cfg,
                    &prior,
                    &marginal,
                );
                assert_eq!(kept, r.kept, "{what}: kept");
                if cfg.filter {
                    assert!(kept > 0 && (kept as usize) < shape.batch || shape.batch == 1, "{what}: filter splits");
                }
                for s in 0..shape.batch {
                    common::close(
                        &format!("{what} weight"),
                        s,
                        outs.weights[s],
                        r.weights[s],
                        2.0 * EPS * r.weights[s],
                    );
                }
                for o in 0..shape.outputs {
                    assert_eq!(outs.positive[o] as f64, r.positive[o] as f32 as f64, "{what}: positive[{o}]");
                    common::close(&format!("{what} mean"), o, outs.mean[o], r.mean[o], 2.0 * EPS * r.mean[o]);
                    if cfg.diversity != 0.0 {
                        common::close(&format!("{what} running"), o, outs.running[o], r.running[o], 4.0 * EPS);
                    }
                }
                for k in 0..n {
                    common::close(
                        &format!("{what} delta"),
                        k,
                        delta[k],
                        r.delta[k],
                        16.0 * EPS * r.delta_mag[k] + 1e-30,
                    );
                }
                let tol = 1e-6 * r.loss_mag + 1e-12;
                assert!((loss - r.loss).abs() <= tol, "{what}: loss {loss} vs {}", r.loss);
                assert!((div - r.diversity).abs() <= 1e-9 * r.diversity.abs() + 1e-12, "{what}: diversity");
                if cfg.diversity == 0.0 {
                    assert_eq!(div, 0.0);
                }
            }
        }
    }
}

#[test]
fn pass_edges() {
    // Everything filtered under the mean: no gradient from the loss, loss 0, kept 0.
    let shape = Shape::new(3, 1, 2);
    let z = [0.1f32, -0.2, 0.3, 0.0, -0.05, 0.2];
    let d: Vec<f32> = z.iter().map(|&v| sigmoid(v)).collect();
    let entropy: Vec<f32> = z.iter().map(|&v| entropy_bits(v)).collect();
    let mut delta = vec![1.0f32; 6];
    let mut outs = Outs::new(shape);
    let cfg = Adapt { filter: true, eata: true, mean: true, max_entropy: 0.5, diversity: 0.0, marginal_momentum: 0.0 };
    let mut work = outs.work(cfg);
    let loss = adapt(shape, &z, &d, &entropy, &entropy, &mut delta, 1.0 / 3.0, &mut work);
    assert_eq!((loss, work.kept), (0.0, 0));
    assert!(delta.iter().all(|&v| v == 0.0) && outs.weights.iter().all(|&v| v == 0.0));
    assert_eq!(outs.positive, [2.0 / 3.0, 1.0 / 3.0]);
    // A batch whose predictions are all exactly 0 or 1, against a prior of exactly 1 and 0:
    // the clipped marginal keeps the term and δ finite, and it is then the KL at the clip.
    let z = [200.0f32, -200.0, 150.0, -300.0];
    let d: Vec<f32> = z.iter().map(|&v| sigmoid(v)).collect();
    let entropy: Vec<f32> = z.iter().map(|&v| entropy_bits(v)).collect();
    let shape = Shape::new(2, 1, 2);
    let mut delta = vec![0.0f32; 4];
    let mut outs = Outs::new(shape);
    (outs.prior, outs.marginal) = (vec![0.0, 1.0], vec![0.5, 0.5]);
    let cfg =
        Adapt { filter: false, eata: false, mean: true, max_entropy: 0.0, diversity: 1.0, marginal_momentum: 0.0 };
    let mut work = outs.work(cfg);
    let loss = adapt(shape, &z, &d, &entropy, &entropy, &mut delta, 0.5, &mut work);
    let at_clip = 2.0 * bernoulli_kl(0.0, 1.0 - P_MIN);
    assert!((loss - at_clip).abs() <= 1e-9 * at_clip, "{loss} vs {at_clip}");
    assert!(delta.iter().all(|v| v.is_finite()));
    assert_eq!((outs.mean, outs.positive, outs.running), (vec![1.0, 0.0], vec![1.0, 0.0], vec![1.0, 0.0]));
    // A sample exactly at E0 is kept; one just above it is not.
    let shape = Shape::new(2, 1, 2);
    let entropy = [0.25f32, 0.25, 0.25, f32::from_bits(0.25f32.to_bits() + 1)];
    let mut delta = vec![1.0f32; 4];
    let mut outs = Outs::new(shape);
    let cfg = Adapt { filter: true, eata: true, mean: false, max_entropy: 0.5, diversity: 0.0, marginal_momentum: 0.0 };
    let mut work = outs.work(cfg);
    adapt(shape, &[0.0; 4], &[0.5; 4], &entropy, &entropy, &mut delta, 1.0, &mut work);
    assert_eq!(work.kept, 1);
    assert_eq!(outs.weights, [1.0, 0.0]);
    assert_eq!(delta, [1.0, 1.0, 0.0, 0.0]);
    // Decoding of the record.
    let record = |flags, max_entropy, diversity, marginal_momentum| AdaptRecord {
        flags,
        max_entropy,
        diversity,
        marginal_momentum,
        ..AdaptRecord::default()
    };
    assert_eq!(Adapt::decode(&record(8, 0.0, 0.0, 0.0)), None);
    assert_eq!(Adapt::decode(&record(1, f32::NAN, 0.0, 0.0)), None);
    assert_eq!(Adapt::decode(&record(0, 0.0, f32::INFINITY, 0.0)), None);
    for beta in [1.0, -0.25, f32::NAN, 1.5] {
        assert_eq!(Adapt::decode(&record(0, 0.0, 1.0, beta)), None, "β = {beta}");
    }
    let a = Adapt::decode(&record(7, 1.5, 0.25, 0.75)).unwrap();
    assert!(a.filter && a.eata && a.mean && a.max_entropy == 1.5 && a.diversity == 0.25);
    assert_eq!(a.marginal_momentum, 0.75);
    assert_eq!(bernoulli_kl(0.5, 0.5), 0.0);
    assert_eq!(bernoulli_kl(1.0, 0.25), 2.0);
    assert!((bernoulli_kl(0.0, 0.5) - 1.0).abs() < 1e-15);
}

/// A layer for the adaptation pass: entropy minimisation alone, `g` updated by SGD with
/// momentum, `w` and `b` frozen, and the pass (mean reduction, nothing else) set.
fn fixture(shape: Shape, seed: u64) -> Fixture {
    let mut f = Fixture::new(shape, seed);
    let mut rng = Rng::new(seed);
    let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
    let r = 2.0 / (shape.inputs as f64).sqrt();
    f.x = rng.vec(xn, 1.5);
    f.y = rng.targets(zn);
    f.w = rng.vec(wn, r);
    f.g = rng.vec(wn, 0.3 * r);
    f.b = rng.vec(on, 0.5);
    f.coefficients = LossCoefficients { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 / shape.batch as f32 };
    f.adapt = Some(Adapt {
        filter: false,
        eata: false,
        mean: true,
        max_entropy: 0.0,
        diversity: 0.0,
        marginal_momentum: 0.0,
    });
    (f.prior, f.marginal) = prior_and_marginal(on, &mut rng);
    f.bufs = [vec![0.0; wn], vec![0.0; wn], vec![0.0; on]];
    f.rules = [Rule::FROZEN, Rule { momentum: 0.9, weight_decay: 0.01, ..Rule::sgd(0.1) }, Rule::FROZEN];
    f
}

/// The adaptation loss of a gradients call, or of a step (`update`).
fn run(f: &mut Fixture, update: bool) -> Result<f64, Error> {
    if update { f.step() } else { f.gradients() }.map(|t| t.loss)
}

/// The fixture's adaptation settings.
fn cfg(f: &Fixture) -> Adapt {
    f.adapt.expect("an adaptation pass")
}

/// Sets the fixture's diversity coefficient.
fn set_diversity(f: &mut Fixture, diversity: f32) {
    f.adapt = Some(Adapt { diversity, ..cfg(f) });
}

/// The whole adaptation loss in f64 at parameters (g, b), with the sample weights and the
/// kept count held fixed (EATA's weights carry no gradient), and its analytic gradient.
struct FullRef {
    loss: f64,
    dw: Vec<f64>,
    db: Vec<f64>,
    dw_mag: Vec<f64>,
    weights: Vec<f64>,
    kept: u32,
    mean: Vec<f64>,
    running: Vec<f64>,
    diversity: f64,
}

fn full_ref(f: &Fixture, g: &[f64], b: &[f64], fixed: Option<(&[f64], u32)>) -> FullRef {
    let Shape { batch, inputs, outputs } = f.shape;
    let wt = f.coefficients;
    let scale = wt.scale as f64;
    let (mut z, mut d, mut h, mut l, mut u) = (vec![0.0; batch * outputs], vec![], vec![], vec![], vec![]);
    for n in 0..batch {
        for o in 0..outputs {
            let mut s = b[o];
            for i in 0..inputs {
                s += f.x[n * inputs + i] as f64 * (f.w[o * inputs + i] as f64 + g[o * inputs + i]);
            }
            z[n * outputs + o] = s;
        }
    }
    for (k, &zk) in z.iter().enumerate() {
        let y = if wt.cross_entropy != 0.0 { f.y[k] as f64 } else { 0.0 };
        let dk = ref_sigmoid(zk);
        // Unscaled: the adaptation pass decides the scale.
        let r = ref_unit(zk, dk, y, &LossCoefficients { scale: 1.0, ..wt });
        d.push(dk);
        h.push(r.h);
        l.push(r.loss);
        u.push(r.delta);
    }
    let scaled: Vec<f64> = u.iter().map(|v| v * scale).collect();
    let pass = ref_adapt(f.shape, &z, &d, &h, &l, &scaled, scale, &cfg(f), &f64s(&f.prior), &f64s(&f.marginal));
    let (weights, kept) = match fixed {
        Some((w, k)) => (w.to_vec(), k),
        None => (pass.weights.clone(), pass.kept),
    };
    // Recompute the loss and δ with the (possibly fixed) weights.
    let s_kept = if !cfg(f).mean {
        1.0
    } else if kept == 0 {
        0.0
    } else {
        1.0 / kept as f64
    };
    let mut loss = pass.diversity;
    let mut delta = pass.delta.clone();
    for n in 0..batch {
        for o in 0..outputs {
            let k = n * outputs + o;
            loss += s_kept * weights[n] * l[k];
            delta[k] += (s_kept * weights[n] - s_kept_of(&pass, f, n)) * u[k];
        }
    }
    let mut dw = vec![0.0; outputs * inputs];
    let mut dw_mag = vec![0.0; outputs * inputs];
    let mut db = vec![0.0; outputs];
    for n in 0..batch {
        for o in 0..outputs {
            let dl = delta[n * outputs + o];
            db[o] += dl;
            for i in 0..inputs {
                dw[o * inputs + i] += dl * f.x[n * inputs + i] as f64;
                dw_mag[o * inputs + i] +=
                    (pass.delta_mag[n * outputs + o] + dl.abs()) * (f.x[n * inputs + i] as f64).abs();
            }
        }
    }
    FullRef { loss, dw, db, dw_mag, weights, kept, mean: pass.mean, running: pass.running, diversity: pass.diversity }
}

/// The weight·s′ the reference pass itself applied to sample n.
fn s_kept_of(p: &PassRef, f: &Fixture, n: usize) -> f64 {
    let s = if !cfg(f).mean {
        1.0
    } else if p.kept == 0 {
        0.0
    } else {
        1.0 / p.kept as f64
    };
    s * p.weights[n]
}

#[test]
fn gradients_match_the_reference_and_its_finite_differences() {
    let shapes = [Shape::new(6, 5, 3), Shape::new(16, 9, 10), Shape::new(33, 17, 4)];
    for (si, &shape) in shapes.iter().enumerate() {
        for (ci, objective) in [(1.0f32, 0.0f32), (0.5, 0.5)].into_iter().enumerate() {
            let base = fixture(shape, 100 + si as u64);
            let g64 = f64s(&base.g);
            let b64 = f64s(&base.b);
            let h: Vec<f64> = {
                let mut probe = base.clone();
                probe.adapt = Some(Adapt { diversity: 0.0, ..cfg(&probe) });
                run(&mut probe, false).unwrap();
                (0..shape.batch)
                    .map(|n| (0..shape.outputs).map(|o| probe.unit_entropy[n * shape.outputs + o] as f64).sum())
                    .collect()
            };
            let e0 = threshold(&h);
            for cfg in configs(e0) {
                for sum in [false, true] {
                    let mut f = base.clone();
                    f.adapt = Some(Adapt { mean: !sum, ..cfg });
                    f.coefficients = LossCoefficients {
                        entropy: objective.0,
                        cross_entropy: objective.1,
                        scale: if sum { 1.0 } else { 1.0 / shape.batch as f32 },
                    };
                    let what = format!("{shape:?} objective {ci} {:?}", f.adapt);
                    let loss = run(&mut f, false).expect("gradients");
                    let r = full_ref(&f, &g64, &b64, None);
                    assert_eq!(f.kept, r.kept, "{what}: kept");
                    for n in 0..shape.batch {
                        common::close(
                            &format!("{what} weight"),
                            n,
                            f.adapt_out[0][n],
                            r.weights[n],
                            1e-5 * r.weights[n],
                        );
                    }
                    for o in 0..shape.outputs {
                        common::close(&format!("{what} mean"), o, f.adapt_out[2][o], r.mean[o], 1e-5);
                        if cfg.diversity != 0.0 {
                            common::close(&format!("{what} running"), o, f.running[o], r.running[o], 1e-5);
                        }
                    }
                    assert!((loss - r.loss).abs() <= 1e-5 * (r.loss.abs() + 1.0), "{what}: loss {loss} vs {}", r.loss);
                    assert!(
                        (f.diversity_loss - r.diversity).abs() <= 1e-5 * (r.diversity.abs() + 1.0),
                        "{what}: diversity"
                    );
                    for k in 0..r.dw.len() {
                        common::close(&format!("{what} dw"), k, f.dw[k], r.dw[k], 2e-5 * r.dw_mag[k] + 1e-9);
                    }
                    for o in 0..shape.outputs {
                        let mag: f64 = r.dw_mag.iter().skip(o * shape.inputs).take(shape.inputs).sum::<f64>() + 1e-3;
                        common::close(&format!("{what} db"), o, f.db[o], r.db[o], 2e-5 * mag);
                    }
                    // The reference gradient is the gradient of the reference loss (weights held).
                    let fixed = Some((&r.weights[..], r.kept));
                    let step = 1e-6;
                    for k in [0, shape.w_len() / 2, shape.w_len() - 1] {
                        let (mut gp, mut gm) = (g64.clone(), g64.clone());
                        gp[k] += step;
                        gm[k] -= step;
                        let fd =
                            (full_ref(&f, &gp, &b64, fixed).loss - full_ref(&f, &gm, &b64, fixed).loss) / (2.0 * step);
                        assert!(
                            (fd - r.dw[k]).abs() <= 1e-6 * (r.dw_mag[k] + 1.0),
                            "{what}: dG[{k}] {} vs fd {fd}",
                            r.dw[k]
                        );
                    }
                    for o in [0, shape.outputs - 1] {
                        let (mut bp, mut bm) = (b64.clone(), b64.clone());
                        bp[o] += step;
                        bm[o] -= step;
                        let fd =
                            (full_ref(&f, &g64, &bp, fixed).loss - full_ref(&f, &g64, &bm, fixed).loss) / (2.0 * step);
                        assert!(
                            (fd - r.db[o]).abs() <= 1e-6 * (r.db[o].abs() + 1.0),
                            "{what}: db[{o}] {} vs fd {fd}",
                            r.db[o]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn diversity_holds_the_marginal_near_the_prior() {
    // Plain entropy minimisation on a batch drives every prediction of an output to one side;
    // with the diversity term (its running marginal carried from step to step, as Adapter does)
    // the mean prediction of each output stays near its prior.
    let run = |diversity: f32| {
        let mut f = fixture(Shape::new(32, 6, 3), 9);
        f.b = vec![1.5; 3];
        f.prior = vec![0.2, 0.3, 0.5];
        f.marginal = f.prior.clone();
        f.adapt = Some(Adapt { diversity, marginal_momentum: 0.5, ..cfg(&f) });
        f.rules = [Rule::FROZEN, Rule::sgd(2.0), Rule::sgd(2.0)];
        for _ in 0..200 {
            run(&mut f, true).unwrap();
            if diversity != 0.0 {
                f.marginal = f.running.clone();
            }
        }
        let gap = f.adapt_out[2].iter().zip(&f.prior).map(|(m, p)| (m - p).abs()).fold(0.0f32, f32::max);
        (gap, f.adapt_out[2].clone())
    };
    let (plain, m0) = run(0.0);
    let (diverse, m1) = run(2.0);
    assert!(plain > 0.4, "plain entropy minimisation collapses: {m0:?}");
    assert!(diverse < 0.1, "mean predictions {m1:?} near the prior [0.2, 0.3, 0.5]");
}

#[test]
fn statuses_and_check_before_write() {
    let shape = Shape::new(5, 4, 3);
    // A weight exp(E0 − H) that overflows f32: status 4, nothing written.
    let mut f = fixture(shape, 3);
    f.adapt = Some(Adapt { filter: true, eata: true, max_entropy: 1e3, ..cfg(&f) });
    let before = f.state();
    assert_eq!(run(&mut f, true), Err(Error::NonFiniteResult));
    assert!(f.state() == before);
    // A NaN in x is still status 1.
    let mut f = fixture(shape, 3);
    set_diversity(&mut f, 0.5);
    f.x[5] = f32::NAN;
    let before = f.state();
    assert_eq!(run(&mut f, true), Err(Error::NonFiniteInput));
    assert!(f.state() == before);
    // A good step writes g (and its buffer) and leaves the frozen w and b alone.
    let mut f = fixture(shape, 3);
    set_diversity(&mut f, 0.5);
    let before = f.clone();
    run(&mut f, true).unwrap();
    assert!(bits(&f.w) == bits(&before.w) && bits(&f.b) == bits(&before.b));
    assert!(bits(&f.g) != bits(&before.g) && bits(&f.bufs[1]) != bits(&before.bufs[1]));
    // Adaptation needs the per-unit entropies and losses.
    let mut f = fixture(shape, 3);
    let (x, coefficients) = (f.x.clone(), f.coefficients);
    let (layer, mut work, _) = f.parts();
    work.unit_entropy = None;
    assert_eq!(
        gradients_pass(&Input { shape, x: &x, targets: None, coefficients, labelled: None }, &layer, &mut work).err(),
        Some(Error::InvalidArgs)
    );
    // A weights buffer of the wrong length.
    let mut f = fixture(shape, 3);
    f.adapt_out[0].push(0.0);
    assert_eq!(run(&mut f, false), Err(Error::InvalidArgs));
}

#[test]
fn no_allocation() {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
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
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(p, l) }
        }
    }
    #[global_allocator]
    static COUNTING: Counting = Counting;
    let shape = Shape::new(17, 9, 10);
    let z: Vec<f32> = (0..shape.z_len()).map(|k| (k as f32 * 0.37).sin() * 4.0).collect();
    let d: Vec<f32> = z.iter().map(|&v| sigmoid(v)).collect();
    let entropy: Vec<f32> = z.iter().map(|&v| entropy_bits(v)).collect();
    let mut delta = vec![0.1f32; shape.z_len()];
    let mut outs = Outs::new(shape);
    let cfg = Adapt { filter: true, eata: true, mean: true, max_entropy: 4.0, diversity: 0.3, marginal_momentum: 0.5 };
    let before = ALLOCS.with(|c| c.get());
    let mut work = outs.work(cfg);
    for _ in 0..3 {
        adapt(shape, &z, &d, &entropy, &entropy, &mut delta, 1.0 / 17.0, &mut work);
    }
    assert_eq!(ALLOCS.with(|c| c.get()) - before, 0);
}
