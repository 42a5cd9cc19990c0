//! Property tests (proptest) of the kernels and the drivers, in every build `scripts/test-rust.sh`
//! runs (host, wasm, wasm + simd128): random shapes with every tail the kernels have (1..=9
//! around the 4-wide vectors and the 2×4 / 4×2 / 8×1 and 2×16 register tiles, 15..=17, 31..=33,
//! and inputs of 256 and 1024 that put x into strips), values that
//! include huge, tiny, subnormal and ±0 numbers, NaN and ±∞ where a call must reject them, and
//! random objectives and update rules. `CASES` cases per property (10 000 under wasm), from fixed seeds, so
//! every run tries the same cases; `ENTROGRAD_PROPTEST_CASES` and `ENTROGRAD_PROPTEST_SEED` (read
//! at compile time, so they work under wasm too) make longer or different runs on demand.
//!
//! Invariants:
//! * every stage of a step matches the f64 reference computed from that stage's own inputs (z from
//!   x, w, g, b; the per-unit values from the kernel's z; dw, db from its δ; the update from its
//!   gradient), so tolerances stay tight even where a huge value makes z itself inexact;
//! * no NaN or ±∞ leaves a successful call;
//! * a failure names its cause (1 non-finite x, 2 non-finite target, 3 target outside [0, 1],
//!   4 overflow, and 4 only when the inputs allow a value beyond f32), and leaves parameters,
//!   momentum buffers and rules bitwise as they were; conversely, inputs that cannot overflow
//!   never fail;
//! * mismatched lengths give InvalidArgs and write nothing at all (scratch included);
//! * `sgd_update(write = false)` reports exactly whether `write = true` stores finite values;
//! * on wasm + simd128 the SIMD and scalar bodies agree bit for bit.

#![allow(clippy::needless_range_loop)]

mod common;

use common::{bits, flavours, outs, ref_sigmoid, ref_unit, Kernels, EPS};
use entrograd_core::adam::Scalars;
use entrograd_core::pack::{weights_len, DELTA_FLUSH};
use entrograd_core::step::{self, forward_pass, gradients_pass, objective_pass};
use entrograd_core::{Error, Input, Layer, LossCoefficients, Optimizer, Rule, RuleKind, Shape, Totals, Work};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Cases per property: 10⁴ in each wasm build (release, where the shipped kernels run); the
/// host build is unoptimised and runs the same scalar code, so it tries fewer (250).
const CASES: u32 = parse_or(option_env!("ENTROGRAD_PROPTEST_CASES"), DEFAULT_CASES) as u32;
const DEFAULT_CASES: u64 = if cfg!(target_arch = "wasm32") { 10_000 } else { 250 };
const SEED: u64 = parse_or(option_env!("ENTROGRAD_PROPTEST_SEED"), 0x5EED_2026);

const fn parse_or(s: Option<&str>, default: u64) -> u64 {
    let Some(s) = s else { return default };
    let b = s.as_bytes();
    if b.is_empty() {
        return default;
    }
    let mut v = 0u64;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "ENTROGRAD_PROPTEST_*: digits only");
        v = v * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    v
}

fn config(salt: u64) -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // No files (wasm has none) and no random seed: the same cases every run.
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(SEED ^ salt),
        max_shrink_iters: 10_000,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------ strategies

/// One dimension: mostly 1..=9, sometimes around 16 and 32.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![12 => 1usize..=9, 2 => 15usize..=17, 1 => 31usize..=33]
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        24 => (dim(), dim(), dim()).prop_map(|(b, i, o)| Shape::new(b, i, o)),
        // Rows 1 KiB or 4 KiB apart and batches past the cache's ways: the gradient reads x
        // from strips (pack::packs_inputs).
        1 => (49usize..=56, 1usize..=3).prop_map(|(b, o)| Shape::new(b, 256, o)),
        1 => (13usize..=16, 1usize..=3).prop_map(|(b, o)| Shape::new(b, 1024, o)),
    ]
}

fn signed(v: f32, negative: bool) -> f32 {
    if negative {
        -v
    } else {
        v
    }
}

/// How extreme a case's numbers may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Regime {
    /// Moderate values only.
    Plain,
    /// Plus ±0, subnormals and tiny numbers.
    Small,
    /// Plus huge numbers (up to 1e30): overflow becomes possible.
    Wild,
}

fn regime() -> impl Strategy<Value = Regime> {
    prop_oneof![6 => Just(Regime::Plain), 2 => Just(Regime::Small), 2 => Just(Regime::Wild)]
}

/// A finite f32 of the kinds that break numerics, as the regime allows.
fn value(regime: Regime, scale: f32) -> BoxedStrategy<f32> {
    let plain = (-1.0f32..=1.0).prop_map(move |v| v * scale);
    let zero = prop_oneof![Just(0.0f32), Just(-0.0f32)];
    let subnormal = (1u32..0x0080_0000, any::<bool>()).prop_map(|(m, s)| f32::from_bits(m | ((s as u32) << 31)));
    let tiny = (-38.0f32..-20.0, any::<bool>()).prop_map(|(e, s)| signed(10f32.powf(e), s));
    let huge = (5.0f32..30.0, any::<bool>()).prop_map(|(e, s)| signed(10f32.powf(e), s));
    match regime {
        Regime::Plain => plain.boxed(),
        Regime::Small => prop_oneof![10 => plain, 1 => zero, 1 => subnormal, 1 => tiny].boxed(),
        Regime::Wild => prop_oneof![10 => plain, 1 => zero, 1 => subnormal, 1 => tiny, 2 => huge].boxed(),
    }
}

/// `n` values of the regime's kinds, as `value` draws them, filled from one seed: much faster
/// than a vector of strategies under wasm (proptest then shrinks the seed, the shape and the
/// regime, not each element).
fn fill(regime: Regime, n: usize, scale: f32, seed: u64) -> Vec<f32> {
    let mut rng = common::Rng::new(seed);
    (0..n)
        .map(|_| {
            let u = if regime == Regime::Plain { 0 } else { rng.below(if regime == Regime::Wild { 15 } else { 13 }) };
            let neg = rng.below(2) == 0;
            match u {
                0..=9 => rng.sym(scale as f64),
                10 => signed(0.0, neg),
                11 => f32::from_bits((1 + rng.below(0x007F_FFFF) as u32) | ((neg as u32) << 31)),
                12 => signed(10f32.powf(-38.0 + 18.0 * rng.unit() as f32), neg),
                _ => signed(10f32.powf(5.0 + 25.0 * rng.unit() as f32), neg),
            }
        })
        .collect()
}

fn values(regime: Regime, n: usize, scale: f32) -> BoxedStrategy<Vec<f32>> {
    any::<u64>().prop_map(move |seed| fill(regime, n, scale, seed)).boxed()
}

/// `n` values of any bits (a quarter of them) or of the wild regime, from one seed.
fn any_f32s(n: usize) -> BoxedStrategy<Vec<f32>> {
    any::<u64>()
        .prop_map(move |seed| {
            let mut rng = common::Rng::new(seed);
            let wild = fill(Regime::Wild, n, 100.0, seed ^ 0xA5A5);
            (0..n).map(|i| if rng.below(4) == 0 { f32::from_bits(rng.next_u64() as u32) } else { wild[i] }).collect()
        })
        .boxed()
}

/// `n` targets in [0, 1] with exact 0s and 1s (and -0), from one seed.
fn targets_of(n: usize) -> BoxedStrategy<Vec<f32>> {
    any::<u64>()
        .prop_map(move |seed| {
            let mut rng = common::Rng::new(seed);
            (0..n)
                .map(|_| match rng.below(6) {
                    0 => 0.0,
                    1 => 1.0,
                    2 => -0.0,
                    _ => rng.unit() as f32,
                })
                .collect()
        })
        .boxed()
}

/// Targets in [0, 1] with exact 0s and 1s (and -0).
fn target() -> impl Strategy<Value = f32> {
    prop_oneof![3 => 0.0f32..=1.0, 1 => Just(0.0f32), 1 => Just(1.0f32), 1 => Just(-0.0f32)]
}

/// A bad value to plant somewhere: NaN, ±∞, or (for targets) a finite value outside [0, 1].
fn poison(finite_out_of_range: bool) -> BoxedStrategy<f32> {
    let non_finite = prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)];
    if finite_out_of_range {
        prop_oneof![non_finite, Just(1.5f32), Just(-0.25f32), Just(1.000_000_1f32), Just(-1e-30f32), Just(3e38f32)]
            .boxed()
    } else {
        non_finite.boxed()
    }
}

/// An objective weight.
fn alpha(regime: Regime) -> BoxedStrategy<f32> {
    // -0: the objective's entropy-only loops stand in for the cross-entropy terms with the signed
    // zeros they give (objective/simd128.rs).
    let common = prop_oneof![3 => Just(0.0f32), 1 => Just(-0.0f32), 3 => Just(1.0f32), 4 => -2.0f32..=2.0];
    if regime == Regime::Wild {
        prop_oneof![8 => common, 1 => 1e30f32..=3e38f32, 1 => -3e38f32..=-1e30f32].boxed()
    } else {
        common.boxed()
    }
}

fn rule(regime: Regime) -> BoxedStrategy<Rule> {
    let lr = if regime == Regime::Wild {
        prop_oneof![8 => 0.0f32..=1.0, 1 => Just(0.0f32), 1 => 1e20f32..=3e38].boxed()
    } else {
        prop_oneof![8 => 0.0f32..=1.0, 1 => Just(0.0f32)].boxed()
    };
    (
        (
            prop_oneof![2 => Just(RuleKind::Frozen), 5 => Just(RuleKind::Sgd), 3 => Just(RuleKind::Adam)],
            lr,
            prop_oneof![2 => Just(0.0f32), 1 => 0.0f32..=0.1],
            prop_oneof![1 => Just(0.0f32), 1 => 0.0f32..=0.99],
            prop_oneof![2 => Just(0.0f32), 1 => 0.0f32..=1.0],
            any::<bool>(),
            any::<bool>(),
        ),
        (
            // Adam: 1 − β₁, 1 − β₂ in (0, 1], ε > 0, and the step count so far.
            prop_oneof![2 => Just(0.1f32), 1 => 1e-4f32..=1.0],
            prop_oneof![2 => Just(1e-3f32), 1 => 1e-6f32..=1.0],
            prop_oneof![2 => Just(1e-8f32), 1 => 1e-12f32..=1e-2],
            prop_oneof![3 => 0u32..=3, 1 => any::<u32>(), 1 => Just(u32::MAX)],
        ),
    )
        .prop_map(
            |(
                (kind, lr, weight_decay, momentum, dampening, nesterov, buf_ready),
                (one_minus_beta1, one_minus_beta2, eps, step),
            )| Rule {
                kind,
                lr,
                weight_decay,
                momentum,
                dampening,
                nesterov,
                buf_ready,
                one_minus_beta1,
                one_minus_beta2,
                eps,
                step,
            },
        )
        .boxed()
}

/// Everything one fused step reads.
#[derive(Clone, Debug)]
struct Case {
    shape: Shape,
    #[allow(dead_code)] // shown when a case fails
    regime: Regime,
    x: Vec<f32>,
    y: Vec<f32>,
    w: Vec<f32>,
    g: Vec<f32>,
    b: Vec<f32>,
    bufs: [Vec<f32>; 3],
    /// Adam's moments (v ≥ 0, as a second moment always is).
    exp_avg: [Vec<f32>; 3],
    exp_avg_sq: [Vec<f32>; 3],
    rules: [Rule; 3],
    coefficients: LossCoefficients,
    /// Gradient clipping: 0 (off), a positive norm, or (rarely) an invalid one.
    max_grad_norm: f32,
}

fn case() -> impl Strategy<Value = Case> {
    (shape(), regime())
        .prop_flat_map(|(shape, regime)| {
            let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
            let r = 1.0 / (shape.inputs as f32).sqrt();
            (
                (Just(shape), Just(regime), values(regime, xn, 2.0), targets_of(zn)),
                (values(regime, wn, r), values(regime, wn, r), values(regime, on, 0.5)),
                (values(regime, wn, 0.1), values(regime, wn, 0.1), values(regime, on, 0.1)),
                (values(regime, wn, 0.1), values(regime, wn, 0.1), values(regime, on, 0.1)),
                (values(regime, wn, 0.01), values(regime, wn, 0.01), values(regime, on, 0.01)),
                (rule(regime), rule(regime), rule(regime)),
                prop_oneof![
                    6 => Just(0.0f32),
                    3 => 1e-3f32..=10.0,
                    1 => prop_oneof![Just(-1.0f32), Just(f32::NAN), Just(f32::INFINITY), Just(-0.0f32)]
                ],
                (alpha(regime), alpha(regime), any::<bool>()),
                // Plant NaN/±∞ in x (1 in 12 cases) and a bad target (1 in 8).
                (proptest::option::weighted(1.0 / 12.0, (0..xn, poison(false)))),
                (proptest::option::weighted(1.0 / 8.0, (0..zn, poison(true)))),
            )
        })
        .prop_map(
            |(
                (shape, regime, mut x, mut y),
                (w, g, b),
                (b0, b1, b2),
                (m0, m1, m2),
                (v0, v1, v2),
                (r0, r1, r2),
                max_grad_norm,
                (ae, ac, mean),
                px,
                py,
            )| {
                if let Some((i, v)) = px {
                    x[i] = v;
                }
                if let Some((i, v)) = py {
                    y[i] = v;
                }
                let scale = if mean { 1.0 / shape.batch as f32 } else { 1.0 };
                Case {
                    shape,
                    regime,
                    x,
                    y,
                    w,
                    g,
                    b,
                    bufs: [b0, b1, b2],
                    exp_avg: [m0, m1, m2],
                    exp_avg_sq: [v0, v1, v2].map(|v| v.into_iter().map(f32::abs).collect()),
                    rules: [r0, r1, r2],
                    coefficients: LossCoefficients { entropy: ae, cross_entropy: ac, scale },
                    max_grad_norm,
                }
            },
        )
}

// ------------------------------------------------------------------------------ helpers

fn finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// The f32 values the kernel stored must lie within `tol` of the f64 reference.
fn within(what: &str, got: &[f32], want: &[f64], tol: &[f64]) -> Result<(), TestCaseError> {
    within_lazy(|| what.to_string(), got, want, tol)
}

/// `within`, naming the values only on a failure (formatting every label costs more than the
/// checks themselves, 10⁴ cases × every unit).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN must fail the check
fn within_lazy(what: impl Fn() -> String, got: &[f32], want: &[f64], tol: &[f64]) -> Result<(), TestCaseError> {
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i]).abs();
        if !(err <= tol[i]) {
            let what = what();
            prop_assert!(false, "{what}[{i}]: got {:e}, want {:e}, |err| {err:e} > tol {:e}", got[i], want[i], tol[i]);
        }
    }
    Ok(())
}

/// Absolute error a chain of `n` f32 operations can pick up below the normal range.
fn underflow(n: usize) -> f64 {
    n as f64 * f64::from(f32::from_bits(1))
}

/// torch.optim.SGD in f64 from the f32 state, with error bounds for the f32 evaluation:
/// (θ', bound), and (buf', bound) when the rule has momentum.
#[allow(clippy::type_complexity)]
fn sgd_reference(theta: &[f32], grad: &[f32], buf: &[f32], r: &Rule) -> (Vec<(f64, f64)>, Option<Vec<(f64, f64)>>) {
    let (lr, wd, mu) = (r.lr as f64, r.weight_decay as f64, r.momentum as f64);
    let keep = 1.0 - r.dampening as f64;
    // Every value below picks up at most a few roundings relative to the magnitudes it sums
    // (keep = 1 - τ is rounded once too), plus underflow below the normal range.
    let amp = (1.0 + lr.abs()) * (1.0 + mu.abs()).powi(2);
    let floor = underflow(16) * amp;
    let mut th = Vec::with_capacity(theta.len());
    let mut bf = Vec::with_capacity(theta.len());
    for i in 0..theta.len() {
        let t = theta[i] as f64;
        let u = grad[i] as f64 + wd * t;
        let um = (grad[i] as f64).abs() + (wd * t).abs();
        let (mut u2, mut u2m) = (u, um);
        if mu != 0.0 {
            let (b, bm) = if r.buf_ready {
                let b0 = buf[i] as f64;
                (mu * b0 + keep * u, (mu * b0).abs() + keep.abs() * um)
            } else {
                (u, um)
            };
            bf.push((b, 6.0 * EPS * bm + floor));
            if r.nesterov {
                u2 = u + mu * b;
                u2m = um + mu.abs() * bm;
            } else {
                u2 = b;
                u2m = bm;
            }
        }
        th.push((t - lr * u2, 8.0 * EPS * (t.abs() + lr.abs() * u2m) + floor));
    }
    (th, (mu != 0.0).then_some(bf))
}

/// Checks an update against `sgd_reference`.
fn check_update(
    what: &str,
    new: &[f32],
    new_buf: &[f32],
    old: &[f32],
    grad: &[f32],
    buf: &[f32],
    r: &Rule,
) -> Result<(), TestCaseError> {
    let (th, bf) = sgd_reference(old, grad, buf, r);
    let (want, tol): (Vec<f64>, Vec<f64>) = th.into_iter().unzip();
    within_lazy(|| format!("{what} θ {r:?}"), new, &want, &tol)?;
    match bf {
        Some(bf) => {
            let (want, tol): (Vec<f64>, Vec<f64>) = bf.into_iter().unzip();
            within_lazy(|| format!("{what} buffer {r:?}"), new_buf, &want, &tol)?;
        }
        None => prop_assert!(bits(new_buf) == bits(buf), "{} buffer written without momentum", what),
    }
    Ok(())
}

/// AdamW (torch.optim.AdamW) in f64 from the f32 state and gradient: θ', m', v' within bounds.
#[allow(clippy::too_many_arguments)]
fn check_adam(
    what: &str,
    new: &[f32],
    new_m: &[f32],
    new_v: &[f32],
    old: &[f32],
    grad: &[f32],
    m: &[f32],
    v: &[f32],
    r: &Rule,
) -> Result<(), TestCaseError> {
    let (q1, q2) = (r.one_minus_beta1 as f64, r.one_minus_beta2 as f64);
    let t = r.step.saturating_add(1) as f64;
    let (c1, c2) = (1.0 - (1.0 - q1).powf(t), 1.0 - (1.0 - q2).powf(t));
    let (lr, wd, eps) = (r.lr as f64, r.weight_decay as f64, r.eps as f64);
    let step = lr / c1;
    let decay = if r.weight_decay != 0.0 { 1.0 - lr * wd } else { 1.0 };
    let n = old.len();
    let (mut wt, mut tt, mut wm, mut tm, mut wv, mut tv) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let (th, g, m0, v0) = (old[i] as f64 * decay, grad[i] as f64, m[i] as f64, v[i] as f64);
        wm[i] = (1.0 - q1) * m0 + q1 * g;
        tm[i] = 6.0 * EPS * ((1.0 - q1) * m0.abs() + q1 * g.abs()) + underflow(4);
        wv[i] = (1.0 - q2) * v0 + q2 * g * g;
        tv[i] = 8.0 * EPS * wv[i] + underflow(4);
        let denom = wv[i].sqrt() / c2.sqrt() + eps;
        let ratio = wm[i] / denom;
        wt[i] = th - step * ratio;
        // θ·decay, the moments, √, /√c₂, + ε, the ratio, lr/c₁ (rounded to f32), the product:
        // a few roundings each, relative to the magnitudes, plus what the moments' own error
        // does to the ratio (the denominator is at least ε).
        let ratio_tol = (16.0 * EPS * ratio.abs() + (tm[i] + tv[i].sqrt() / c2.sqrt()) / denom) * step.abs();
        tt[i] = 4.0 * EPS * (th.abs() + (old[i] as f64).abs())
            + ratio_tol
            + 8.0 * EPS * step.abs() * ratio.abs()
            + underflow(8);
    }
    within_lazy(|| format!("{what} Adam θ {r:?}"), new, &wt, &tt)?;
    within_lazy(|| format!("{what} Adam m"), new_m, &wm, &tm)?;
    within_lazy(|| format!("{what} Adam v"), new_v, &wv, &tv)?;
    Ok(())
}

/// An upper bound on the magnitude of every intermediate value of a step on finite inputs with
/// in-range targets: if it stays well inside f32's range, no overflow can happen, so the step
/// must succeed; a NonFiniteResult is only acceptable beyond it.
fn largest_intermediate(c: &Case) -> f64 {
    let Shape { batch, inputs, outputs } = c.shape;
    let (ae, ac, s) =
        (c.coefficients.entropy.abs() as f64, c.coefficients.cross_entropy.abs() as f64, c.coefficients.scale as f64);
    let mut big = ae.max(ac * 1.5);
    let wsum: Vec<f64> = c.w.iter().zip(&c.g).map(|(&a, &b)| (a as f64).abs() + (b as f64).abs()).collect();
    big = wsum.iter().fold(big, |m, &v| m.max(v));
    // |δ| ≤ (scale/ln2)·(|αC|·|σ - y| + |αE|·|z·σ(1-σ)|), with |σ - y| ≤ 1 and |z·σ(1-σ)| < 0.225.
    let k = s * 1.5;
    let g = ac + ae * 0.225;
    let delta = k * g;
    big = big.max(k).max(g).max(delta);
    for n in 0..batch {
        for o in 0..outputs {
            let mut zm = (c.b[o] as f64).abs();
            for i in 0..inputs {
                zm += (c.x[n * inputs + i] as f64).abs() * wsum[o * inputs + i];
            }
            // CE ≤ max(z, 0) + log1p + |y·z| ≤ 2|z| + 1; loss = αE·H + (αC/ln2)·CE.
            big = big.max(zm).max(ae + ac * 1.5 * (2.0 * zm + 1.0));
        }
    }
    let mut dw = vec![0.0f64; inputs];
    for i in 0..inputs {
        for n in 0..batch {
            dw[i] += delta * (c.x[n * inputs + i] as f64).abs();
        }
        big = big.max(dw[i]);
    }
    let db = delta * batch as f64;
    big = big.max(db);
    for k in 0..3 {
        let r = &c.rules[k];
        if r.kind == RuleKind::Frozen {
            continue;
        }
        let theta = [&c.w, &c.g, &c.b][k];
        if r.kind == RuleKind::Adam {
            let (q1, q2) = (r.one_minus_beta1 as f64, r.one_minus_beta2 as f64);
            let t = r.step.saturating_add(1) as f64;
            let (c1, c2) = (1.0 - (1.0 - q1).powf(t), 1.0 - (1.0 - q2).powf(t));
            let (lr, wd, eps) = (r.lr.abs() as f64, r.weight_decay.abs() as f64, r.eps as f64);
            let step = lr / c1;
            big = big.max(step).max(lr * wd);
            for i in 0..theta.len() {
                let grad = if k == 2 { db } else { dw[i % inputs] };
                let (m0, v0) = (c.exp_avg[k][i].abs() as f64, c.exp_avg_sq[k][i] as f64);
                let nm = m0 + q1 * grad;
                let g2 = grad * grad;
                // The smallest v' can be (a lower bound keeps the ratio an upper bound).
                let nv_low = (1.0 - q2) * v0;
                let ratio = nm / (nv_low.sqrt() / c2.sqrt() + eps);
                let t0 = (theta[i] as f64).abs() * (1.0 + lr * wd);
                big = big.max(nm).max(g2).max(v0 + q2 * g2).max(ratio).max(t0 + step * ratio);
            }
            continue;
        }
        let (lr, wd, mu, keep) =
            (r.lr.abs() as f64, r.weight_decay.abs() as f64, r.momentum.abs() as f64, (1.0 - r.dampening as f64).abs());
        for i in 0..theta.len() {
            let t = (theta[i] as f64).abs();
            let grad = if k == 2 { db } else { dw[i % inputs] };
            let u = grad + wd * t;
            let nb = mu * (c.bufs[k][i] as f64).abs() + keep * u;
            let u2 = u + mu * nb + nb;
            big = big.max(u).max(nb).max(u2).max(lr * u2).max(t + lr * u2);
        }
    }
    big
}

/// Some intermediate may exceed f32 (with a margin for rounding and the bounds' slack).
fn may_overflow(c: &Case) -> bool {
    largest_intermediate(c) >= f32::MAX as f64 / 8.0
}

// ------------------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(config(1))]

    /// The fused step, stage by stage, against the f64 reference; or a clean, explained failure.
    #[test]
    fn step_matches_the_reference_or_fails_cleanly(c in case()) {
        check_step_case(&c)?;
    }
}

fn check_step_case(c: &Case) -> Result<(), TestCaseError> {
    let shape = c.shape;
    let (wn, zn, on) = (shape.w_len(), shape.z_len(), shape.outputs);
    let (mut w, mut g, mut b) = (c.w.clone(), c.g.clone(), c.b.clone());
    let mut bufs = c.bufs.clone();
    let mut ms = c.exp_avg.clone();
    let mut vs = c.exp_avg_sq.clone();
    let mut pack = vec![f32::NAN; entrograd_core::pack_len(shape).unwrap()];
    let mut z = vec![f32::NAN; zn];
    let mut d = vec![f32::NAN; zn];
    let mut delta = vec![f32::NAN; zn];
    let mut unit_entropy = vec![f32::NAN; zn];
    let mut unit_loss = vec![f32::NAN; zn];
    let mut dw = vec![f32::NAN; wn];
    let mut db = vec![f32::NAN; on];
    let targets = (c.coefficients.cross_entropy != 0.0).then_some(&c.y[..]);
    let (result, rules_after) = {
        let [b0, b1, b2] = &mut bufs;
        let [m0, m1, m2] = &mut ms;
        let [v0, v1, v2] = &mut vs;
        let mut opt = Optimizer {
            rules: c.rules,
            bufs: [Some(b0), Some(b1), Some(b2)],
            exp_avg: [Some(m0), Some(m1), Some(m2)],
            exp_avg_sq: [Some(v0), Some(v1), Some(v2)],
            max_grad_norm: c.max_grad_norm,
        };
        let mut layer = Layer { w: &mut w, g: &mut g, b: &mut b };
        let mut work = Work {
            pack: &mut pack,
            z: &mut z,
            d: &mut d,
            delta: Some(&mut delta),
            unit_entropy: Some(&mut unit_entropy),
            unit_loss: Some(&mut unit_loss),
            dw: Some(&mut dw),
            db: Some(&mut db),
            adapt: None,
        };
        let r = step::step(
            &Input { shape, x: &c.x, targets, coefficients: c.coefficients, labelled: None },
            &mut layer,
            &mut work,
            &mut opt,
        );
        (r, opt.rules)
    };

    let x_bad = !finite(&c.x);
    let y_bad = targets.is_some_and(|y| !finite(y));
    let y_out = targets.is_some_and(|y| y.iter().any(|&t| !(0.0..=1.0).contains(&t)));
    let totals = match result {
        Err(e) => {
            let state_kept = bits(&w) == bits(&c.w)
                && bits(&g) == bits(&c.g)
                && bits(&b) == bits(&c.b)
                && (0..3).all(|k| {
                    bits(&bufs[k]) == bits(&c.bufs[k])
                        && bits(&ms[k]) == bits(&c.exp_avg[k])
                        && bits(&vs[k]) == bits(&c.exp_avg_sq[k])
                })
                && rules_after == c.rules;
            prop_assert!(state_kept, "{e:?}: parameters, optimizer state or rules changed");
            let norm_ok = c.max_grad_norm >= 0.0 && c.max_grad_norm.is_finite();
            let want = if !norm_ok {
                // Checked before anything is computed.
                prop_assert!(bits(&z).iter().all(|&v| v == f32::NAN.to_bits()), "z written by an invalid call");
                Error::InvalidArgs
            } else if x_bad {
                Error::NonFiniteInput
            } else if y_bad {
                Error::NonFiniteTarget
            } else if y_out {
                Error::TargetOutOfRange
            } else {
                prop_assert!(
                    may_overflow(c),
                    "{e:?} although no intermediate can exceed {:e} (bound {:e})",
                    f32::MAX as f64 / 8.0,
                    largest_intermediate(c)
                );
                Error::NonFiniteResult
            };
            prop_assert_eq!(e, want);
            return Ok(());
        }
        Ok(t) => t,
    };
    prop_assert!(!x_bad && !y_bad && !y_out, "a step on bad inputs succeeded");
    prop_assert!(c.max_grad_norm >= 0.0 && c.max_grad_norm.is_finite(), "an invalid max_grad_norm was accepted");

    // No NaN or ±∞ leaves a successful call.
    for (name, v) in [
        ("w", &w),
        ("g", &g),
        ("b", &b),
        ("z", &z),
        ("d", &d),
        ("delta", &delta),
        ("unit_entropy", &unit_entropy),
        ("unit_loss", &unit_loss),
        ("dw", &dw),
        ("db", &db),
    ] {
        prop_assert!(finite(v), "{} not finite after a successful step: {:?}", name, v);
    }
    for k in 0..3 {
        if c.rules[k].uses_buffer() {
            prop_assert!(finite(&bufs[k]), "momentum buffer {} not finite", k);
        }
        if c.rules[k].kind == RuleKind::Adam {
            prop_assert!(finite(&ms[k]) && finite(&vs[k]), "Adam moments {} not finite", k);
        }
    }
    prop_assert!(totals.loss.is_finite() && totals.entropy.is_finite());

    // z from x, wsum = w + g (formed in f32 by pack_weights), b.
    let wsum: Vec<f32> = (0..wn).map(|i| c.w[i] + c.g[i]).collect();
    let Shape { batch, inputs, outputs } = shape;
    let chain = inputs / 4 + 8;
    let (mut zr, mut zt) = (vec![0.0; zn], vec![0.0; zn]);
    for n in 0..batch {
        for o in 0..outputs {
            let (mut s, mut mag) = (c.b[o] as f64, (c.b[o] as f64).abs());
            for i in 0..inputs {
                let t = c.x[n * inputs + i] as f64 * wsum[o * inputs + i] as f64;
                s += t;
                mag += t.abs();
            }
            zr[n * outputs + o] = s;
            zt[n * outputs + o] = chain as f64 * EPS * mag + underflow(2 * chain);
        }
    }
    within("z", &z, &zr, &zt)?;
    // σ, H, loss and δ from the kernel's own z (and σ for δ).
    let w8 = &c.coefficients;
    let floor = 1e-35 * (1.0 + w8.entropy.abs() as f64 + w8.cross_entropy.abs() as f64);
    for k in 0..zn {
        let zk = z[k] as f64;
        let want_d = ref_sigmoid(zk);
        prop_assert!(
            (d[k] as f64 - want_d).abs() <= 4.0 * EPS * want_d + 2e-38,
            "d[{}] = {:e}, want σ({:e}) = {:e}",
            k,
            d[k],
            zk,
            want_d
        );
        let y = targets.map_or(0.0, |y| y[k] as f64);
        let r = ref_unit(zk, d[k] as f64, y, w8);
        let what = || format!("unit {k}: z = {zk:e}, y = {y}, {w8:?}");
        prop_assert!((0.0..=1.0).contains(&unit_entropy[k]), "{}: H = {}", what(), unit_entropy[k]);
        within_lazy(|| format!("{} H", what()), &unit_entropy[k..=k], &[r.h], &[8.0 * EPS * r.h + 1e-35])?;
        within_lazy(|| format!("{} loss", what()), &unit_loss[k..=k], &[r.loss], &[8.0 * EPS * r.loss_mag + floor])?;
        within_lazy(
            || format!("{} delta", what()),
            &delta[k..=k],
            &[r.delta],
            &[8.0 * EPS * r.delta_mag + floor * w8.scale as f64 + underflow(8)],
        )?;
    }
    // The totals are scale·Σ of the per-unit values the kernel stored.
    let s = w8.scale as f64;
    let (sl, ml) = unit_loss.iter().fold((0.0, 0.0), |(a, m), &v| (a + v as f64, m + (v as f64).abs()));
    let (sh, mh) = unit_entropy.iter().fold((0.0, 0.0), |(a, m), &v| (a + v as f64, m + v as f64));
    prop_assert!((totals.loss - s * sl).abs() <= 1e-12 * s * ml + 1e-300, "loss {} vs {}", totals.loss, s * sl);
    prop_assert!(
        (totals.entropy - s * sh).abs() <= 1e-12 * s * mh + 1e-300,
        "entropy {} vs {}",
        totals.entropy,
        s * sh
    );
    // dw, db from the kernel's δ.
    let chain = batch + 2;
    let (mut dwr, mut dwt) = (vec![0.0; wn], vec![0.0; wn]);
    let (mut dbr, mut dbt) = (vec![0.0; on], vec![0.0; on]);
    for o in 0..outputs {
        let (mut sb, mut mb) = (0.0, 0.0);
        for n in 0..batch {
            sb += delta[n * outputs + o] as f64;
            mb += (delta[n * outputs + o] as f64).abs();
        }
        dbr[o] = sb;
        dbt[o] = chain as f64 * EPS * mb + underflow(chain);
        for i in 0..inputs {
            let (mut sw, mut mw, mut flushed) = (0.0, 0.0, 0.0);
            for n in 0..batch {
                let dl = delta[n * outputs + o];
                let t = dl as f64 * c.x[n * inputs + i] as f64;
                sw += t;
                mw += t.abs();
                // The gradient reads δ with |δ| < DELTA_FLUSH as 0 (pack::flush): exactly
                // these products are missing from it.
                if dl.abs() < DELTA_FLUSH {
                    flushed += t.abs();
                }
            }
            dwr[o * inputs + i] = sw;
            dwt[o * inputs + i] = chain as f64 * EPS * mw + underflow(2 * chain) + flushed;
        }
    }
    // Clipping (as torch.nn.utils.clip_grad_norm_) scaled dw and db in place by
    // coef = min(max / (norm + 1e-6), 1), norm² = |dw|²·(w, g updated) + |db|²·(b updated).
    if c.max_grad_norm > 0.0 {
        let upd = c.rules.map(|r| r.kind != RuleKind::Frozen);
        let shared = upd[0] as u32 + upd[1] as u32;
        let mut sq = 0.0;
        if shared > 0 {
            sq += dwr.iter().map(|v| v * v).sum::<f64>() * shared as f64;
        }
        if upd[2] {
            sq += dbr.iter().map(|v| v * v).sum::<f64>();
        }
        let coef = (c.max_grad_norm as f64 / (sq.sqrt() + 1e-6)).min(1.0);
        // The norm the kernel computes from its own f32 gradients is off by their tolerance.
        let rel: f64 =
            dwr.iter().zip(&dwt).chain(dbr.iter().zip(&dbt)).map(|(v, t)| t / v.abs().max(1e-300)).fold(0.0, f64::max);
        for (v, t) in dwr.iter_mut().zip(dwt.iter_mut()).chain(dbr.iter_mut().zip(dbt.iter_mut())) {
            *t = *t * coef + (4.0 * EPS + rel.min(1.0)) * coef * v.abs() + underflow(4);
            *v *= coef;
        }
    }
    within("dw", &dw, &dwr, &dwt)?;
    within("db", &db, &dbr, &dbt)?;
    // The updates from the kernel's gradients.
    let news = [&w, &g, &b];
    let olds = [&c.w, &c.g, &c.b];
    let grads = [&dw, &dw, &db];
    for k in 0..3 {
        let r = c.rules[k];
        if r.kind == RuleKind::Frozen {
            let kept = bits(news[k]) == bits(olds[k])
                && bits(&bufs[k]) == bits(&c.bufs[k])
                && bits(&ms[k]) == bits(&c.exp_avg[k])
                && bits(&vs[k]) == bits(&c.exp_avg_sq[k]);
            prop_assert!(kept, "frozen {} moved", k);
            continue;
        }
        if r.kind == RuleKind::Adam {
            check_adam(
                ["param 0", "param 1", "param 2"][k],
                news[k],
                &ms[k],
                &vs[k],
                olds[k],
                grads[k],
                &c.exp_avg[k],
                &c.exp_avg_sq[k],
                &r,
            )?;
            prop_assert!(bits(&bufs[k]) == bits(&c.bufs[k]), "Adam wrote the momentum buffer of {}", k);
            continue;
        }
        check_update(["param 0", "param 1", "param 2"][k], news[k], &bufs[k], olds[k], grads[k], &c.bufs[k], &r)?;
        prop_assert!(
            bits(&ms[k]) == bits(&c.exp_avg[k]) && bits(&vs[k]) == bits(&c.exp_avg_sq[k]),
            "SGD wrote Adam moments"
        );
    }
    // The rules are input only (TypeScript advances buf_ready and the step counts).
    prop_assert_eq!(rules_after, c.rules);
    Ok(())
}

/// Which slice of a call has the wrong length.
#[derive(Clone, Debug)]
struct LengthCase {
    shape: Shape,
    /// Length change per slice: x, y, w, g, b, pack, z, d, delta, unit_entropy, unit_loss, dw, db,
    /// buf0..2, exp_avg0..2, exp_avg_sq0..2.
    off: Vec<i8>,
    /// delta, unit_entropy, unit_loss, dw, db, buf0..2, exp_avg0..2, exp_avg_sq0..2 present.
    present: Vec<bool>,
    call: u8,
    cross_entropy: bool,
    rules: [Rule; 3],
}

fn length_case() -> impl Strategy<Value = LengthCase> {
    (
        (0usize..=9, 0usize..=9, 0usize..=9).prop_map(|(b, i, o)| Shape::new(b, i, o)),
        proptest::collection::vec(prop_oneof![10 => Just(0i8), 1 => -3i8..=3], 22),
        proptest::collection::vec(prop_oneof![8 => Just(true), 1 => Just(false)], 14),
        0u8..4,
        any::<bool>(),
        (rule(Regime::Plain), rule(Regime::Plain), rule(Regime::Plain)),
    )
        .prop_map(|(shape, off, present, call, cross_entropy, (r0, r1, r2))| LengthCase {
            shape,
            off,
            present,
            call,
            cross_entropy,
            rules: [r0, r1, r2],
        })
}

fn sized(n: usize, off: i8, fill: f32) -> Vec<f32> {
    vec![fill; (n as isize + off as isize).max(0) as usize]
}

proptest! {
    #![proptest_config(config(2))]

    /// Any slice of the wrong length, or a missing required one: InvalidArgs, and nothing written.
    #[test]
    fn wrong_lengths_are_invalid_args_and_write_nothing(c in length_case()) {
        let s = c.shape;
        let (xn, wn, zn, on) = (s.x_len(), s.w_len(), s.z_len(), s.outputs);
        let pn = entrograd_core::pack_len(s).unwrap();
        let lens = [xn, zn, wn, wn, on, pn, zn, zn, zn, zn, zn, wn, on, wn, wn, on, wn, wn, on, wn, wn, on];
        let mut v: Vec<Vec<f32>> = lens.iter().zip(&c.off).map(|(&n, &o)| sized(n, o, 0.25)).collect();
        for t in v[1].iter_mut() {
            *t = 0.5;
        }
        let before: Vec<Vec<u32>> = v.iter().map(|s| bits(s)).collect();
        let wrong = |i: usize| v[i].len() != lens[i];
        let coefficients = LossCoefficients { entropy: 1.0, cross_entropy: if c.cross_entropy { 1.0 } else { 0.0 }, scale: 1.0 };
        let call = c.call;
        let present = |k: usize| c.present[k];
        // What the drivers must reject, from the contract alone.
        // pack (5) may be longer than pack_len: only a short one is wrong.
        let mut invalid = [0, 2, 3, 4, 6, 7].into_iter().any(&wrong) || v[5].len() < lens[5];
        for (k, i) in [(0, 8), (1, 9), (2, 10), (3, 11), (4, 12)] {
            invalid |= present(k) && wrong(i);
        }
        if call >= 1 && c.cross_entropy {
            invalid |= wrong(1);
        }
        if call >= 2 {
            invalid |= !present(0) || !present(3) || !present(4);
        }
        if call == 3 {
            for k in 0..3 {
                if c.rules[k].uses_buffer() {
                    invalid |= !present(5 + k) || wrong(13 + k);
                }
                if c.rules[k].kind == RuleKind::Adam {
                    invalid |= !present(8 + k) || wrong(16 + k) || !present(11 + k) || wrong(19 + k);
                }
            }
        }
        let [x, y, w, g, b, pack, z, d, delta, unit_entropy, unit_loss, dw, db, b0, b1, b2, m0, m1, m2, v0, v1, v2] = &mut v[..] else {
            unreachable!()
        };
        let targets = c.cross_entropy.then_some(&y[..]);
        let mut layer = Layer { w, g, b };
        let mut work = Work {
            pack,
            z,
            d,
            delta: present(0).then_some(&mut delta[..]),
            unit_entropy: present(1).then_some(&mut unit_entropy[..]),
            unit_loss: present(2).then_some(&mut unit_loss[..]),
            dw: present(3).then_some(&mut dw[..]),
            db: present(4).then_some(&mut db[..]),
            adapt: None,
        };
        let input = Input { shape: s, x, targets, coefficients, labelled: None };
        let r: Result<(), Error> = match call {
            0 => forward_pass(&input, &layer, &mut work),
            1 => objective_pass(&input, &layer, &mut work).map(|_| ()),
            2 => gradients_pass(&input, &layer, &mut work).map(|_| ()),
            _ => {
                let mut opt = Optimizer {
                    rules: c.rules,
                    bufs: [present(5).then_some(&mut b0[..]), present(6).then_some(&mut b1[..]), present(7).then_some(&mut b2[..])],
                    exp_avg: [present(8).then_some(&mut m0[..]), present(9).then_some(&mut m1[..]), present(10).then_some(&mut m2[..])],
                    exp_avg_sq: [present(11).then_some(&mut v0[..]), present(12).then_some(&mut v1[..]), present(13).then_some(&mut v2[..])],
                    max_grad_norm: 0.0,
                };
                step::step(&input, &mut layer, &mut work, &mut opt).map(|_| ())
            }
        };
        if invalid {
            prop_assert_eq!(r, Err(Error::InvalidArgs));
            let after: Vec<Vec<u32>> = v.iter().map(|s| bits(s)).collect();
            prop_assert!(after == before, "an invalid call wrote something");
        } else {
            prop_assert!(r != Err(Error::InvalidArgs), "well-formed call rejected: {:?}", r);
        }
    }
}

/// Runs one objective flavour, returning (delta, unit_entropy, unit_loss, totals).
fn run_objective(
    k: &Kernels,
    z: &[f32],
    d: &[f32],
    y: Option<&[f32]>,
    w: &LossCoefficients,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Totals) {
    let n = z.len();
    let (mut delta, mut unit_entropy, mut ul) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; n]);
    // The objective writes d = σ(z) too: the same bits as the sigmoid kernel's `d`.
    let mut d2 = vec![f32::NAN; n];
    let t = (k.objective)(z, &mut d2, y, w, outs(Some(&mut delta), Some(&mut unit_entropy), Some(&mut ul)));
    assert_eq!(canon(&d2), canon(d), "{} objective's d vs sigmoid", k.name);
    (delta, unit_entropy, ul, t)
}

/// Any f32 bits at all, finite or not.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![3 => any::<u32>().prop_map(f32::from_bits), 1 => value(Regime::Wild, 100.0)]
}

fn finite_f32() -> impl Strategy<Value = f32> {
    any::<u32>().prop_map(f32::from_bits).prop_filter("finite", |v| v.is_finite())
}

proptest! {
    #![proptest_config(config(3))]

    /// For every finite z (any bits) and target in [0, 1]: σ ∈ [0, 1], H ∈ [0, 1], δ finite, the
    /// loss finite unless the cross-entropy itself exceeds f32, each within tolerance of the
    /// reference; in every flavour.
    #[test]
    fn objective_never_gives_nan_for_finite_z(
        z in proptest::collection::vec(prop_oneof![3 => finite_f32(), 1 => value(Regime::Wild, 30.0)], 1..=40),
        ys in proptest::collection::vec(target(), 40),
        ae in -4.0f32..=4.0,
        ac in prop_oneof![Just(0.0f32), -4.0f32..=4.0],
        scale in prop_oneof![Just(1.0f32), 1e-6f32..=1.0],
    ) {
        let n = z.len();
        let y = &ys[..n];
        let w = LossCoefficients { entropy: ae, cross_entropy: ac, scale };
        for k in flavours() {
            let mut d = vec![f32::NAN; n];
            (k.sigmoid)(&z, &mut d);
            let (delta, unit_entropy, ul, t) = run_objective(k, &z, &d, (ac != 0.0).then_some(y), &w);
            let mut overflow = false;
            for i in 0..n {
                let zi = z[i] as f64;
                prop_assert!((0.0..=1.0).contains(&d[i]), "{} σ({:e}) = {}", k.name, zi, d[i]);
                prop_assert!((0.0..=1.0).contains(&unit_entropy[i]), "{} H({:e}) = {}", k.name, zi, unit_entropy[i]);
                prop_assert!(delta[i].is_finite(), "{} δ({:e}) = {}", k.name, zi, delta[i]);
                let r = ref_unit(zi, d[i] as f64, if ac != 0.0 { y[i] as f64 } else { 0.0 }, &w);
                prop_assert!((d[i] as f64 - ref_sigmoid(zi)).abs() <= 4.0 * EPS * ref_sigmoid(zi) + 2e-38);
                prop_assert!((unit_entropy[i] as f64 - r.h).abs() <= 8.0 * EPS * r.h + 1e-35, "{} H({:e})", k.name, zi);
                prop_assert!(
                    (delta[i] as f64 - r.delta).abs() <= 8.0 * EPS * r.delta_mag + 1e-35 + underflow(8),
                    "{} δ({:e}) = {:e}, want {:e}", k.name, zi, delta[i], r.delta
                );
                if r.loss_mag * 1.01 >= f32::MAX as f64 {
                    overflow |= !ul[i].is_finite();
                } else {
                    prop_assert!(ul[i].is_finite(), "{} loss({:e}) = {}", k.name, zi, ul[i]);
                    prop_assert!((ul[i] as f64 - r.loss).abs() <= 8.0 * EPS * r.loss_mag + 1e-35 * (1.0 + (ae.abs() + ac.abs()) as f64));
                }
            }
            prop_assert!(t.entropy.is_finite());
            prop_assert_eq!(t.loss.is_finite(), !overflow);
            prop_assert!(!t.targets_out_of_range);
        }
    }

    /// `sgd_update(write = false)` writes nothing and tells exactly whether `write = true` stores
    /// finite values; what it stores matches torch.optim.SGD in f64. Every flavour.
    #[test]
    fn sgd_update_checks_exactly_what_it_writes(
        (theta, grad, buf) in dim().prop_flat_map(|n| (
            proptest::collection::vec(any_f32(), n),
            proptest::collection::vec(any_f32(), n),
            proptest::collection::vec(any_f32(), n),
        )),
        sane in proptest::collection::vec(value(Regime::Wild, 2.0), 3 * 33),
        mostly_finite in 0u8..4,
        r in rule(Regime::Wild),
    ) {
        let n = theta.len();
        // Most cases: finite values (any bits in a quarter of them), so both outcomes occur.
        let pick = |v: &[f32], at: usize| -> Vec<f32> {
            if mostly_finite > 0 { sane[at..at + n].to_vec() } else { v.to_vec() }
        };
        let (theta, grad, buf0) = (pick(&theta, 0), pick(&grad, 33), pick(&buf, 66));
        let r = Rule { kind: RuleKind::Sgd, ..r };
        let uses = r.uses_buffer();
        for k in flavours() {
            let (mut t, mut b) = (theta.clone(), buf0.clone());
            let check = (k.sgd_update)(&mut t, &grad, if uses { Some(&mut b) } else { None }, &r, false);
            prop_assert!(bits(&t) == bits(&theta) && bits(&b) == bits(&buf0), "{} write=false wrote", k.name);
            let wrote = (k.sgd_update)(&mut t, &grad, if uses { Some(&mut b) } else { None }, &r, true);
            prop_assert_eq!(check, wrote, "{} check and write disagree", k.name);
            let all_finite = finite(&t) && (!uses || finite(&b));
            prop_assert_eq!(wrote, all_finite, "{}: returned {} but finite = {}", k.name, wrote, all_finite);
            if !uses {
                prop_assert!(bits(&b) == bits(&buf0), "{} buffer written without momentum", k.name);
            }
            if wrote && finite(&theta) && finite(&grad) && finite(&buf0) {
                check_update(k.name, &t, &b, &theta, &grad, &buf0, &r)?;
            }
        }
    }
}

/// Bits, with every NaN the same (wasm leaves a NaN's sign and payload unspecified).
fn canon(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| if x.is_nan() { 0x7FC0_0000 } else { x.to_bits() }).collect()
}

proptest! {
    #![proptest_config(config(4))]

    /// SIMD128 and scalar bodies: the same bits from every kernel, NaN and ±∞ inputs included
    /// (on builds with one flavour this checks the scalar body against itself, trivially).
    #[test]
    fn flavours_agree_bit_for_bit(
        (shape, x, wsum, b, z, y) in shape().prop_flat_map(|s| (
            Just(s),
            any_f32s(s.x_len()),
            any_f32s(s.w_len()),
            any_f32s(s.outputs),
            any_f32s(s.z_len()),
            (targets_of(s.z_len()), any_f32s(s.z_len()), any::<u64>()).prop_map(|(t, a, seed)| {
                let mut rng = common::Rng::new(seed);
                t.into_iter().zip(a).map(|(t, a)| if rng.below(5) == 0 { a } else { t }).collect::<Vec<f32>>()
            }),
        )),
        ae in alpha(Regime::Wild),
        ac in alpha(Regime::Wild),
        scale in prop_oneof![Just(1.0f32), 0.0f32..=1.0],
        r in rule(Regime::Wild),
    ) {
        let all = flavours();
        let base = &all[0];
        let w = LossCoefficients { entropy: ae, cross_entropy: ac, scale };
        for k in all {
            let (wn, zn, on) = (shape.w_len(), shape.z_len(), shape.outputs);
            let run = |k: &Kernels| {
                let mut s = vec![f32::NAN; weights_len(shape).unwrap()];
                let max_s = (k.pack_weights)(&wsum, &wsum, &mut s, shape);
                let strips = common::gradient_source(k, shape, &x);
                let mut zz = vec![f32::NAN; zn];
                (k.gemm)(&x, &s, &b, &mut zz, shape);
                let mut d = vec![f32::NAN; zn];
                (k.sigmoid)(&z, &mut d);
                let obj = run_objective(k, &z, &d, (ac != 0.0).then_some(&y[..]), &w);
                let mut dw = vec![f32::NAN; wn];
                let max_dw = (k.weight_gradient)(&common::pairs_of(&z, shape), &strips, &mut dw, shape);
                let mut db = vec![f32::NAN; on];
                let max_db = (k.bias_gradient)(&z, &mut db, shape);
                let maxima = vec![max_s[0], max_s[1], max_dw, max_db];
                let mut theta_a = wsum.clone();
                let mut m = dw.clone();
                let mut v: Vec<f32> = db.iter().cycle().take(wn).map(|x| x.abs()).collect();
                let ra = Rule { kind: RuleKind::Adam, ..r };
                let ok_a = (k.adam_update)(&mut theta_a, &dw, &mut m, &mut v, &Scalars::of(&ra), true);
                let mut theta = wsum.clone();
                let mut buf = dw.clone();
                let uses = r.uses_buffer() && r.kind == RuleKind::Sgd;
                let ok = if r.kind == RuleKind::Sgd {
                    (k.sgd_update)(&mut theta, &dw, if uses { Some(&mut buf) } else { None }, &r, true)
                } else {
                    true
                };
                (s, zz, d, obj, dw, db, theta, buf, ok, (theta_a, m, v, ok_a), strips, maxima)
            };
            let a = run(base);
            let c = run(k);
            prop_assert_eq!(canon(&a.0), canon(&c.0), "{} pack_weights", k.name);
            prop_assert_eq!(canon(&a.10), canon(&c.10), "{} pack_inputs", k.name);
            prop_assert_eq!(canon(&a.11), canon(&c.11), "{} the kernels' maxima", k.name);
            prop_assert_eq!(canon(&a.1), canon(&c.1), "{} gemm", k.name);
            prop_assert_eq!(canon(&a.2), canon(&c.2), "{} sigmoid", k.name);
            prop_assert_eq!(canon(&a.3.0), canon(&c.3.0), "{} delta", k.name);
            prop_assert_eq!(canon(&a.3.1), canon(&c.3.1), "{} unit_entropy", k.name);
            prop_assert_eq!(canon(&a.3.2), canon(&c.3.2), "{} unit_loss", k.name);
            let (ta, tc) = (a.3.3, c.3.3);
            for (p, q, what) in [(ta.loss, tc.loss, "loss"), (ta.entropy, tc.entropy, "entropy")] {
                // f64 sums of the same f32 values in another order.
                let same = (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= 1e-12 * p.abs().max(q.abs());
                prop_assert!(same, "{} {}: {} vs {}", k.name, what, p, q);
            }
            if ac != 0.0 && y.iter().all(|t| !t.is_nan()) {
                prop_assert_eq!(ta.targets_out_of_range, tc.targets_out_of_range, "{} range flag", k.name);
            }
            prop_assert_eq!(canon(&a.4), canon(&c.4), "{} weight_gradient", k.name);
            prop_assert_eq!(canon(&a.5), canon(&c.5), "{} bias_gradient", k.name);
            prop_assert_eq!(canon(&a.6), canon(&c.6), "{} sgd θ", k.name);
            prop_assert_eq!(canon(&a.7), canon(&c.7), "{} sgd buffer", k.name);
            prop_assert_eq!(a.8, c.8, "{} sgd finite flag", k.name);
            prop_assert_eq!(canon(&a.9.0), canon(&c.9.0), "{} adam θ", k.name);
            prop_assert_eq!(canon(&a.9.1), canon(&c.9.1), "{} adam m", k.name);
            prop_assert_eq!(canon(&a.9.2), canon(&c.9.2), "{} adam v", k.name);
            prop_assert_eq!(a.9.3, c.9.3, "{} adam finite flag", k.name);
        }
    }
}
