//! What the tests share: the table of every compiled flavour of the kernels, the reference every
//! flavour is checked against (written from the formulas in `f64`) with the checks themselves,
//! and `Fixture`, a layer with everything the drivers take. Shared by the host tests and the
//! wasm tests (scalar and SIMD builds), so every flavour meets the same reference with the same
//! tolerances.

#![allow(dead_code)]

use entrograd_core::adam::Scalars;
use entrograd_core::objective::Totals;
use entrograd_core::pack::{packs_inputs, strips_len, weights_len, weights_stride, DELTA_FLUSH, STRIP};
use entrograd_core::step::{self, gradients_pass, objective_pass};
use entrograd_core::{
    Adapt, AdaptWork, Error, Input, Layer, LossCoefficients, Optimizer, Rule, RuleKind, Shape, UnitOutputs, Work,
};

// ---------------------------------------------------------------- the flavours

type Gemm = fn(&[f32], &[f32], &[f32], &mut [f32], Shape);
type PackWeights = fn(&[f32], &[f32], &mut [f32], Shape) -> [f32; 2];
type Sgd = fn(&mut [f32], &[f32], Option<&mut [f32]>, &Rule, bool) -> bool;
type Adam = fn(&mut [f32], &[f32], &mut [f32], &mut [f32], &Scalars, bool) -> bool;
type Objective = fn(&[f32], &mut [f32], Option<&[f32]>, &LossCoefficients, UnitOutputs) -> Totals;

/// The objective's outputs, by position: `δ`, each unit's entropy, each unit's loss.
pub fn outs<'a>(
    delta: Option<&'a mut [f32]>,
    entropy: Option<&'a mut [f32]>,
    loss: Option<&'a mut [f32]>,
) -> UnitOutputs<'a> {
    UnitOutputs { delta, entropy, loss }
}

/// One flavour's bodies (matrixmultiply style: one table, every flavour through the same
/// checks). Their contracts are the checked kernels' (`entrograd_core::kernels`) with lengths
/// already checked; `sgd_update` takes an SGD rule and `buf` is `Some` exactly when the rule
/// uses a buffer; `adam_update` takes an Adam rule's `Scalars`.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub name: &'static str,
    pub pack_weights: PackWeights,
    pub pack_inputs: fn(&[f32], &mut [f32], Shape),
    pub gemm: Gemm,
    pub sigmoid: fn(&[f32], &mut [f32]),
    pub objective: Objective,
    pub weight_gradient: fn(&[f32], &[f32], &mut [f32], Shape) -> f32,
    pub bias_gradient: fn(&[f32], &mut [f32], Shape) -> f32,
    pub sgd_update: Sgd,
    pub adam_update: Adam,
}

/// The table of a flavour, by the name of its file in each kernel folder.
macro_rules! kernels {
    ($f:ident) => {
        Kernels {
            name: stringify!($f),
            pack_weights: entrograd_core::pack::$f::pack_weights,
            pack_inputs: entrograd_core::pack::$f::pack_inputs,
            gemm: entrograd_core::forward::$f::gemm,
            sigmoid: entrograd_core::forward::$f::sigmoid,
            objective: entrograd_core::objective::$f::objective,
            weight_gradient: entrograd_core::gradients::$f::weight_gradient,
            bias_gradient: entrograd_core::gradients::$f::bias_gradient,
            sgd_update: entrograd_core::sgd::$f::sgd_update,
            adam_update: entrograd_core::adam::$f::adam_update,
        }
    };
}

/// The flavours compiled into this build: scalar always, SIMD128 on `wasm32` + `simd128`.
pub fn flavours() -> &'static [Kernels] {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return &[kernels!(scalar), kernels!(simd128)];
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    &[kernels!(scalar)]
}

pub const EPS: f64 = f32::EPSILON as f64;
const LN2: f64 = std::f64::consts::LN_2;

/// splitmix64: small, deterministic, the same on every target.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [-r, r).
    pub fn sym(&mut self, r: f64) -> f32 {
        ((self.unit() * 2.0 - 1.0) * r) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
    pub fn vec(&mut self, n: usize, r: f64) -> Vec<f32> {
        (0..n).map(|_| self.sym(r)).collect()
    }
    pub fn targets(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| match self.below(4) {
                0 => 0.0,
                1 => 1.0,
                _ => self.unit() as f32,
            })
            .collect()
    }
}

/// Shapes with every tail the kernels have: odd sizes, sizes around the register tiles
/// (4 rows × 2 outputs forward, 4 outputs × 8 inputs gradient) and a few large ones.
pub fn shapes() -> Vec<Shape> {
    let small = [1usize, 3, 5, 17];
    let mut v = Vec::new();
    for &b in &small {
        for &i in &small {
            for &o in &small {
                v.push(Shape::new(b, i, o));
            }
        }
    }
    for &(b, i, o) in &[
        (2, 8, 4),
        (4, 16, 8),
        (8, 9, 6),
        (33, 33, 33),
        (257, 5, 3),
        (3, 257, 5),
        (5, 3, 257),
        (17, 257, 33),
        (33, 17, 257),
        (257, 33, 17),
        (64, 64, 16),
        (7, 31, 9),
        // x in strips (pack::packs_inputs): rows 1 KiB and 4 KiB apart.
        (49, 256, 5),
        (13, 1024, 3),
    ] {
        v.push(Shape::new(b, i, o));
    }
    v
}

/// `|got - want| ≤ tol` (NaN never passes), with a message naming what was compared.
#[track_caller]
pub fn close(what: &str, idx: usize, got: f32, want: f64, tol: f64) {
    let err = (got as f64 - want).abs();
    assert!(err <= tol, "{what}[{idx}]: got {got:e}, want {want:e}, |err| {err:e} > tol {tol:e}");
}

// ---------------------------------------------------------------- the reference (f64)

/// Stable binary entropy of σ(z) in bits and σ, from `H·ln2 = softplus(z) - z·σ(z)`.
pub fn ref_entropy(z: f64) -> f64 {
    let a = z.abs();
    let e = (-a).exp();
    (e.ln_1p() + a * e / (1.0 + e)) / LN2
}

pub fn ref_sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

pub fn ref_softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// Per unit: (H bits, loss, δ) and their error scales (sums of magnitudes that the f32
/// evaluation rounds), given the kernel's own z, σ and target.
pub struct UnitRef {
    pub h: f64,
    pub loss: f64,
    pub delta: f64,
    pub loss_mag: f64,
    pub delta_mag: f64,
}

pub fn ref_unit(z: f64, d: f64, y: f64, w: &LossCoefficients) -> UnitRef {
    let (ae, ac, s) = (w.entropy as f64, w.cross_entropy as f64, w.scale as f64);
    let h = ref_entropy(z);
    let sp = ref_softplus(z);
    let ce = (sp - y * z) / LN2;
    // σ(1-σ) = e/(1+e)² with e = exp(-|z|): `1 - σ` in f64 would cancel for large z.
    let e = (-z.abs()).exp();
    let ss = e / ((1.0 + e) * (1.0 + e));
    let loss = ae * h + ac * ce;
    let delta = s * (ae * (-(1.0 / LN2) * z * ss) + ac * (d - y) / LN2);
    UnitRef {
        h,
        loss,
        delta,
        loss_mag: ae.abs() * h + ac.abs() * (sp + (y * z).abs()) / LN2,
        delta_mag: s.abs() * (ae.abs() * z.abs() * ss + ac.abs() * (d.abs() + y.abs())) / LN2,
    }
}

// ---------------------------------------------------------------- kernel checks

/// The largest `|v|` (NaN when any `v` is NaN), as the kernels report it.
pub fn max_abs(v: &[f32]) -> f32 {
    f32::from_bits(v.iter().fold(0, |m, x| m.max(x.to_bits() & 0x7fff_ffff)))
}

/// `pack_weights` against its layout: `w + g` in rows padded with zeros to a multiple of 4, and
/// the maxima it reports.
pub fn check_pack_weights(k: &Kernels, shape: Shape, w: &[f32], g: &[f32]) -> Vec<f32> {
    let Shape { inputs, outputs, .. } = shape;
    let n = weights_len(shape).unwrap();
    let stride = weights_stride(inputs).unwrap();
    let mut packed = vec![f32::NAN; n + 3];
    let max = (k.pack_weights)(w, g, &mut packed, shape);
    let mut want = vec![0.0f32; n];
    for o in 0..outputs {
        for i in 0..inputs {
            want[o * stride + i] = w[o * inputs + i] + g[o * inputs + i];
        }
    }
    assert!(bits(&packed[..n]) == bits(&want), "{} pack_weights {shape:?}", k.name);
    assert!(packed[n..].iter().all(|v| v.is_nan()), "{} pack_weights wrote past its rows", k.name);
    assert_eq!(bits(&max), bits(&[max_abs(w), max_abs(g)]), "{} pack_weights' maxima {shape:?}", k.name);
    packed
}

/// `δ` in pairs (`pack_delta`), checked against their layout: block `p` holds `δ[n][2p + j]` at
/// `2p·batch + n·w + j`, `w` the block's width (2, or 1 for the last of an odd count).
pub fn pairs_of(delta: &[f32], shape: Shape) -> Vec<f32> {
    let Shape { batch, outputs, .. } = shape;
    let mut pairs = vec![f32::NAN; shape.z_len() + 3];
    entrograd_core::pack_delta(delta, &mut pairs, shape);
    for n in 0..batch {
        for o in 0..outputs {
            let start = o / 2 * 2;
            let w = (outputs - start).min(2);
            let at = start * batch + n * w + (o - start);
            let v = delta[n * outputs + o];
            let want = if v.abs() < DELTA_FLUSH { 0.0 } else { v };
            assert_eq!(pairs[at].to_bits(), want.to_bits(), "pack_delta {shape:?} at ({n}, {o})");
        }
    }
    assert!(pairs[shape.z_len()..].iter().all(|v| v.is_nan()), "pack_delta wrote past its pairs");
    pairs.truncate(shape.z_len());
    pairs
}

/// What `weight_gradient` reads for this shape: `x` itself, or its strips (checked against their
/// layout: strip `s` holds `x[n][16s + j]` at `n·16 + j`).
pub fn gradient_source(k: &Kernels, shape: Shape, x: &[f32]) -> Vec<f32> {
    if !packs_inputs(shape) {
        return x.to_vec();
    }
    let Shape { batch, inputs, .. } = shape;
    let n = strips_len(shape).unwrap();
    let mut strips = vec![f32::NAN; n + 3];
    (k.pack_inputs)(x, &mut strips, shape);
    let mut want = vec![0.0f32; n];
    for r in 0..batch {
        for i in 0..inputs {
            want[(i / STRIP * batch + r) * STRIP + i % STRIP] = x[r * inputs + i];
        }
    }
    assert!(bits(&strips[..n]) == bits(&want), "{} pack_inputs {shape:?}", k.name);
    assert!(strips[n..].iter().all(|v| v.is_nan()), "{} pack_inputs wrote past its strips", k.name);
    strips.truncate(n);
    strips
}

/// `pack_weights`, `gemm` and `sigmoid` against `z = x·(w+g)ᵀ + b`, `d = σ(z)`.
pub fn check_forward(k: &Kernels, shape: Shape, rng: &mut Rng, range: f64) {
    let Shape { batch, inputs, outputs } = shape;
    let x = rng.vec(shape.x_len(), 1.0);
    let w = rng.vec(shape.w_len(), range);
    let g = rng.vec(shape.w_len(), range);
    let b = rng.vec(outputs, range);
    let packed = check_pack_weights(k, shape, &w, &g);
    let mut z = vec![f32::NAN; shape.z_len()];
    let mut d = vec![f32::NAN; shape.z_len()];
    (k.gemm)(&x, &packed, &b, &mut z, shape);
    (k.sigmoid)(&z, &mut d);
    let what = format!("{} z {shape:?}", k.name);
    for n in 0..batch {
        for o in 0..outputs {
            let (mut s, mut mag) = (b[o] as f64, (b[o] as f64).abs());
            for i in 0..inputs {
                let t = x[n * inputs + i] as f64 * (w[o * inputs + i] + g[o * inputs + i]) as f64;
                s += t;
                mag += t.abs();
            }
            // Four partial sums of ⌈inputs/4⌉ terms, two adds joining them, then + b: at most
            // inputs/4 + 4 roundings of values bounded by `mag`, and the rounding of w + g
            // (this bound, inputs + 4, also held the one long sum the kernels used before).
            let chain = (inputs + 4) as f64;
            let idx = n * outputs + o;
            close(&what, idx, z[idx], s, chain * EPS * mag + 1e-30);
            let zi = z[idx] as f64;
            let want = ref_sigmoid(zi);
            close(&format!("{} d {shape:?} z={zi:e}", k.name), idx, d[idx], want, 4.0 * EPS * want + 2e-38);
        }
    }
}

/// `sigmoid` and the objective over a sweep of z from 0 to ±1e4, incl. the exact points.
pub fn check_sweep(k: &Kernels) {
    let mut z: Vec<f32> = vec![
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        1e-7,
        0.5,
        -0.5,
        1.0,
        -1.0,
        2.0,
        15.0,
        -15.0,
        16.7,
        30.0,
        80.0,
        86.9,
        87.0,
        87.1,
        88.0,
        89.0,
        104.0,
        200.0,
        1e4,
        -1e4,
        3e38,
        -3e38,
        f32::MAX,
        f32::MIN,
        f32::MIN_POSITIVE,
        1e-45,
    ];
    let mut t = -1e4f32;
    while t <= 1e4 {
        z.push(t);
        t = if t.abs() < 1e-3 {
            -t + 1e-3
        } else if t < 0.0 {
            t * 0.83
        } else {
            t * 1.21
        };
    }
    let mut rng = Rng::new(99);
    for _ in 0..2000 {
        z.push(rng.sym(40.0));
    }
    let n = z.len();
    let mut d = vec![f32::NAN; n];
    (k.sigmoid)(&z, &mut d);
    let y = rng.targets(n);
    let mut d2 = vec![f32::NAN; n];
    for (ae, ac) in [(1.0f32, 0.0f32), (0.0, 1.0), (0.7, -0.3), (-1.0, 2.0)] {
        let w = LossCoefficients { entropy: ae, cross_entropy: ac, scale: 0.25 };
        let targets = if ac != 0.0 { Some(&y[..]) } else { None };
        let mut delta = vec![f32::NAN; n];
        let mut entropy = vec![f32::NAN; n];
        let mut ul = vec![f32::NAN; n];
        let tot = (k.objective)(&z, &mut d2, targets, &w, outs(Some(&mut delta), Some(&mut entropy), Some(&mut ul)));
        assert!(bits(&d2) == bits(&d), "{}: the objective's d is σ(z) bit for bit", k.name);
        let (mut sl, mut sh, mut tl) = (0.0, 0.0, 0.0);
        let mut overflow = false;
        for i in 0..n {
            let zi = z[i] as f64;
            let yi = if ac != 0.0 { y[i] as f64 } else { 0.0 };
            let r = ref_unit(zi, d[i] as f64, yi, &w);
            let what = format!("{} ae={ae} ac={ac} z={zi:e}", k.name);
            // Exact points, in every flavour: H(0) = 1, H(±1e4) = 0, σ(0) = 1/2.
            if zi == 0.0 {
                assert!(entropy[i] == 1.0 && d[i] == 0.5, "{what}: H(0) = {}, σ(0) = {}", entropy[i], d[i]);
            }
            if zi.abs() == 1e4 {
                assert!(entropy[i] == 0.0 && d[i] == (zi > 0.0) as u8 as f32, "{what}: H = {}", entropy[i]);
            }
            if zi.abs() <= 1e4 {
                assert!(entropy[i].is_finite() && ul[i].is_finite() && delta[i].is_finite(), "{what}: non-finite");
            }
            // exp/log1p polynomials are good to a few ulps; H near the cut-off (|z| > 87) is
            // below 1e-35 and taken as 0.
            close(&format!("{what} H"), i, entropy[i], r.h, 8.0 * EPS * r.h + 1e-35);
            if r.loss.abs() > f32::MAX as f64 {
                // The cross-entropy in bits itself overflows f32 (|z| > 1.6e38).
                assert!(ul[i].is_infinite(), "{what}: loss {} should overflow", ul[i]);
                overflow = true;
            } else {
                close(&format!("{what} loss"), i, ul[i], r.loss, 8.0 * EPS * r.loss_mag + 1e-35);
            }
            close(&format!("{what} delta"), i, delta[i], r.delta, 8.0 * EPS * r.delta_mag + 1e-35);
            sl += r.loss;
            sh += r.h;
            tl += 8.0 * EPS * r.loss_mag + 1e-35;
        }
        let s = w.scale as f64;
        if overflow {
            assert!(tot.loss.is_infinite());
        } else {
            assert!((tot.loss - s * sl).abs() <= s * tl + 1e-9, "{} loss total {} vs {}", k.name, tot.loss, s * sl);
        }
        assert!((tot.entropy - s * sh).abs() <= 1e-6 * s * sh + 1e-9, "{} entropy total", k.name);
        assert!(!tot.targets_out_of_range);
    }
}

/// The objective on a batch: per-unit outputs, sums, optional outputs, range flag.
pub fn check_objective(k: &Kernels, shape: Shape, rng: &mut Rng) {
    let n = shape.z_len();
    let z: Vec<f32> = (0..n).map(|i| if i % 7 == 3 { rng.sym(1e4) } else { rng.sym(12.0) }).collect();
    let mut d = vec![0.0; n];
    (k.sigmoid)(&z, &mut d);
    let y = rng.targets(n);
    let w = LossCoefficients { entropy: 0.6, cross_entropy: 0.4, scale: 1.0 / shape.batch.max(1) as f32 };
    let mut delta = vec![f32::NAN; n];
    let mut d2 = vec![f32::NAN; n];
    let full = (k.objective)(&z, &mut d2, Some(&y), &w, outs(Some(&mut delta), None, None));
    assert!(bits(&d2) == bits(&d));
    let (mut sl, mut tl) = (0.0, 0.0);
    for i in 0..n {
        let r = ref_unit(z[i] as f64, d[i] as f64, y[i] as f64, &w);
        close(&format!("{} delta {shape:?}", k.name), i, delta[i], r.delta, 8.0 * EPS * r.delta_mag + 1e-35);
        sl += r.loss;
        tl += 8.0 * EPS * r.loss_mag;
    }
    let s = w.scale as f64;
    assert!((full.loss - s * sl).abs() <= s * tl + 1e-12, "{} loss {shape:?}", k.name);
    // Without outputs, the sums are the same.
    let bare = (k.objective)(&z, &mut d2, Some(&y), &w, UnitOutputs::default());
    assert_eq!(bare, full, "{} objective without outputs", k.name);
    // A target above 1 (or below 0) anywhere, tail included, is flagged.
    for bad in [n - 1, n / 2, 0] {
        for v in [1.5f32, -0.25, f32::INFINITY] {
            let mut yb = y.clone();
            yb[bad] = v;
            let t = (k.objective)(&z, &mut d2, Some(&yb), &w, UnitOutputs::default());
            assert!(t.targets_out_of_range, "{} target {v} at {bad} of {n}", k.name);
        }
        let mut yb = y.clone();
        yb[bad] = f32::NAN;
        let t = (k.objective)(&z, &mut d2, Some(&yb), &w, UnitOutputs::default());
        assert!(t.loss.is_nan(), "{} NaN target gives a NaN loss", k.name);
    }
    // αC = 0: targets are not read (NaN targets change nothing).
    let we = LossCoefficients { cross_entropy: 0.0, ..w };
    let a = (k.objective)(&z, &mut d2, None, &we, UnitOutputs::default());
    let nan_y = vec![f32::NAN; n];
    let b = (k.objective)(&z, &mut d2, Some(&nan_y), &we, UnitOutputs::default());
    assert_eq!(a, b);
}

/// `pack_inputs`, `weight_gradient` and `bias_gradient` against `δᵀ·x` and `Σₙ δ`.
pub fn check_gradients(k: &Kernels, shape: Shape, rng: &mut Rng) {
    let Shape { batch, inputs, outputs } = shape;
    let x = rng.vec(shape.x_len(), 2.0);
    let delta = rng.vec(shape.z_len(), 0.5);
    let src = gradient_source(k, shape, &x);
    let mut dw = vec![f32::NAN; shape.w_len()];
    let mut db = vec![f32::NAN; outputs];
    let max_dw = (k.weight_gradient)(&pairs_of(&delta, shape), &src, &mut dw, shape);
    let max_db = (k.bias_gradient)(&delta, &mut db, shape);
    assert_eq!(max_dw.to_bits(), max_abs(&dw).to_bits(), "{} weight_gradient's maximum {shape:?}", k.name);
    assert_eq!(max_db.to_bits(), max_abs(&db).to_bits(), "{} bias_gradient's maximum {shape:?}", k.name);
    let chain = (batch + 2) as f64;
    for o in 0..outputs {
        for i in 0..inputs {
            let (mut s, mut mag, mut flushed) = (0.0, 0.0, 0.0);
            for n in 0..batch {
                let dl = delta[n * outputs + o];
                let t = dl as f64 * x[n * inputs + i] as f64;
                s += t;
                mag += t.abs();
                // δ below DELTA_FLUSH is read as 0 (pack::flush): these products are missing.
                if dl.abs() < DELTA_FLUSH {
                    flushed += t.abs();
                }
            }
            close(
                &format!("{} dw {shape:?}", k.name),
                o * inputs + i,
                dw[o * inputs + i],
                s,
                chain * EPS * mag + 1e-30 + flushed,
            );
        }
        let (mut s, mut mag) = (0.0, 0.0);
        for n in 0..batch {
            s += delta[n * outputs + o] as f64;
            mag += (delta[n * outputs + o] as f64).abs();
        }
        close(&format!("{} db {shape:?}", k.name), o, db[o], s, chain * EPS * mag + 1e-30);
    }
    // A non-finite product anywhere (the last output of the last row too) is reported.
    if batch > 0 && inputs > 0 && outputs > 0 {
        for at in [0, shape.z_len() - 1] {
            let mut bad = delta.clone();
            bad[at] = f32::INFINITY;
            let mut dw = vec![0.0; shape.w_len()];
            let max = (k.weight_gradient)(&pairs_of(&bad, shape), &src, &mut dw, shape);
            assert!(!max.is_finite(), "{} inf δ[{at}] {shape:?}", k.name);
        }
    }
}

/// The reference SGD (torch.optim.SGD) in f64 from f32 state; returns (θ', buf', magnitudes).
pub fn ref_sgd(theta: &[f32], grad: &[f32], buf: Option<&[f32]>, r: &Rule) -> (Vec<f64>, Option<Vec<f64>>, Vec<f64>) {
    let (lr, wd, mu, tau) = (r.lr as f64, r.weight_decay as f64, r.momentum as f64, r.dampening as f64);
    let mut th = Vec::new();
    let mut nb = Vec::new();
    let mut mag = Vec::new();
    for i in 0..theta.len() {
        let t = theta[i] as f64;
        let mut u = grad[i] as f64 + wd * t;
        let mut um = (grad[i] as f64).abs() + (wd * t).abs();
        if mu != 0.0 {
            let b0 = buf.unwrap()[i] as f64;
            let (b, bm) = if r.buf_ready {
                (mu * b0 + (1.0 - tau) * u, (mu * b0).abs() + ((1.0 - tau) * u).abs())
            } else {
                (u, um)
            };
            nb.push(b);
            if r.nesterov {
                u += mu * b;
                um += (mu * bm).abs();
            } else {
                u = b;
                um = bm;
            }
        }
        th.push(t - lr * u);
        mag.push(t.abs() + (lr * um).abs());
    }
    (th, if mu != 0.0 { Some(nb) } else { None }, mag)
}

pub fn rules() -> Vec<Rule> {
    let sgd = Rule::sgd(0.05);
    vec![
        sgd,
        Rule { weight_decay: 0.01, ..sgd },
        Rule { momentum: 0.9, ..sgd },
        Rule { momentum: 0.9, buf_ready: true, ..sgd },
        Rule { momentum: 0.9, dampening: 0.1, buf_ready: true, weight_decay: 0.003, ..sgd },
        Rule { momentum: 0.8, nesterov: true, buf_ready: true, ..sgd },
        Rule { momentum: 0.8, nesterov: true, buf_ready: false, weight_decay: 0.02, ..sgd },
    ]
}

/// `sgd_update` with and without writing, every rule, against the reference.
pub fn check_sgd(k: &Kernels, n: usize, rng: &mut Rng) {
    for r in rules() {
        let theta = rng.vec(n, 1.0);
        let grad = rng.vec(n, 1.0);
        let buf0 = rng.vec(n, 1.0);
        let (want, want_buf, mag) = ref_sgd(&theta, &grad, Some(&buf0), &r);
        let mut th = theta.clone();
        let mut buf = buf0.clone();
        let uses = r.uses_buffer();
        let ok = (k.sgd_update)(&mut th, &grad, if uses { Some(&mut buf) } else { None }, &r, false);
        assert!(ok);
        assert!(bits(&th) == bits(&theta) && bits(&buf) == bits(&buf0), "{} write=false wrote", k.name);
        let ok = (k.sgd_update)(&mut th, &grad, if uses { Some(&mut buf) } else { None }, &r, true);
        assert!(ok);
        for i in 0..n {
            close(&format!("{} sgd {r:?} n={n}", k.name), i, th[i], want[i], 4.0 * EPS * mag[i]);
            if let Some(wb) = &want_buf {
                close(&format!("{} buf {r:?}", k.name), i, buf[i], wb[i], 4.0 * EPS * (wb[i].abs() + 2.0 * mag[i]));
            } else {
                assert_eq!(buf[i].to_bits(), buf0[i].to_bits());
            }
        }
        // Overflow anywhere (the last element too) is reported, and write=false keeps state.
        for bad in [n - 1, 0] {
            let mut g2 = grad.clone();
            g2[bad] = f32::MAX;
            let r2 = Rule { lr: 1e10, ..r };
            let mut th = theta.clone();
            let mut buf = buf0.clone();
            let ok = (k.sgd_update)(&mut th, &g2, if uses { Some(&mut buf) } else { None }, &r2, false);
            assert!(!ok, "{} overflow at {bad} of {n} not seen ({r:?})", k.name);
            assert!(bits(&th) == bits(&theta) && bits(&buf) == bits(&buf0));
        }
    }
}

/// The reference Adam with decoupled decay (torch.optim.AdamW) in f64 from f32 state, at step
/// `t = rule.step + 1`; returns (θ', m', v', magnitudes of θ').
pub fn ref_adam(
    theta: &[f32],
    grad: &[f32],
    m: &[f32],
    v: &[f32],
    r: &Rule,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let (lr, wd, eps) = (r.lr as f64, r.weight_decay as f64, r.eps as f64);
    let (q1, q2) = (r.one_minus_beta1 as f64, r.one_minus_beta2 as f64);
    let t = r.step as i32 + 1;
    let (c1, c2) = (1.0 - (1.0 - q1).powi(t), 1.0 - (1.0 - q2).powi(t));
    let (mut th, mut nm, mut nv, mut mag) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..theta.len() {
        let g = grad[i] as f64;
        let p = theta[i] as f64 * (1.0 - lr * wd);
        let m1 = (1.0 - q1) * m[i] as f64 + q1 * g;
        let v1 = (1.0 - q2) * v[i] as f64 + q2 * g * g;
        let u = (m1 / c1) / ((v1 / c2).sqrt() + eps);
        th.push(p - lr * u);
        nm.push(m1);
        nv.push(v1);
        mag.push(theta[i].abs() as f64 + (lr * u).abs());
    }
    (th, nm, nv, mag)
}

pub fn adam_rules() -> Vec<Rule> {
    let adam = Rule::adam(0.01);
    vec![
        adam,
        Rule { weight_decay: 0.1, ..adam },
        Rule { step: 4, ..adam },
        Rule {
            one_minus_beta1: 0.2,
            one_minus_beta2: 0.01,
            eps: 1e-6,
            step: 1,
            weight_decay: 0.01,
            ..Rule::adam(0.05)
        },
        Rule { step: 10_000, ..adam },
    ]
}

/// `adam_update` with and without writing, every rule, against the reference.
pub fn check_adam(k: &Kernels, n: usize, rng: &mut Rng) {
    for r in adam_rules() {
        let theta = rng.vec(n, 1.0);
        let grad = rng.vec(n, 1.0);
        let m0 = rng.vec(n, 0.1);
        let v0: Vec<f32> = rng.vec(n, 0.1).iter().map(|x| x * x).collect();
        let (want, want_m, want_v, mag) = ref_adam(&theta, &grad, &m0, &v0, &r);
        let s = Scalars::of(&r);
        let (mut th, mut m, mut v) = (theta.clone(), m0.clone(), v0.clone());
        assert!((k.adam_update)(&mut th, &grad, &mut m, &mut v, &s, false));
        assert!(
            bits(&th) == bits(&theta) && bits(&m) == bits(&m0) && bits(&v) == bits(&v0),
            "{} write=false wrote",
            k.name
        );
        assert!((k.adam_update)(&mut th, &grad, &mut m, &mut v, &s, true));
        for i in 0..n {
            let what = format!("{} adam {r:?} n={n}", k.name);
            close(&format!("{what} m"), i, m[i], want_m[i], 4.0 * EPS * (want_m[i].abs() + (grad[i] as f64).abs()));
            close(&format!("{what} v"), i, v[i], want_v[i], 4.0 * EPS * want_v[i].abs() + 1e-30);
            // √v and the divisions add a few roundings; relative to the step lr·|u| ≤ lr·√(1/q₂)
            close(&format!("{what} theta"), i, th[i], want[i], 16.0 * EPS * mag[i]);
        }
        // Overflow anywhere (the last element too) is reported, and write=false keeps state.
        for bad in [n - 1, 0] {
            let mut g2 = grad.clone();
            g2[bad] = f32::MAX;
            let (mut th, mut m, mut v) = (theta.clone(), m0.clone(), v0.clone());
            assert!(!(k.adam_update)(&mut th, &g2, &mut m, &mut v, &s, false), "{} overflow at {bad} of {n}", k.name);
            assert!(bits(&th) == bits(&theta) && bits(&m) == bits(&m0) && bits(&v) == bits(&v0));
        }
    }
}

pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every kernel of one flavour on every shape.
pub fn check_flavour(k: &Kernels) {
    let mut rng = Rng::new(7);
    check_sweep(k);
    for (i, shape) in shapes().into_iter().enumerate() {
        check_forward(k, shape, &mut rng, if i % 5 == 4 { 30.0 } else { 1.0 });
        check_objective(k, shape, &mut rng);
        check_gradients(k, shape, &mut rng);
    }
    for n in [1, 2, 3, 4, 5, 7, 8, 9, 17, 33, 257] {
        check_sgd(k, n, &mut rng);
        check_adam(k, n, &mut rng);
    }
}

// ---------------------------------------------------------------- the whole pass (f64)

/// Loss, entropy, dw and db of the layer in f64, with error scales for dw and db.
pub struct PassRef {
    pub loss: f64,
    pub entropy: f64,
    pub loss_mag: f64,
    pub dw: Vec<f64>,
    pub dw_mag: Vec<f64>,
    pub db: Vec<f64>,
    pub db_mag: Vec<f64>,
}

pub fn ref_pass(
    shape: Shape,
    x: &[f32],
    y: Option<&[f32]>,
    w: &[f32],
    g: &[f32],
    b: &[f32],
    wt: &LossCoefficients,
) -> PassRef {
    let Shape { batch, inputs, outputs } = shape;
    let mut delta = vec![0.0; shape.z_len()];
    let mut delta_mag = vec![0.0; shape.z_len()];
    let (mut loss, mut ent, mut loss_mag) = (0.0, 0.0, 0.0);
    for n in 0..batch {
        for o in 0..outputs {
            let mut z = b[o] as f64;
            for i in 0..inputs {
                z += x[n * inputs + i] as f64 * (w[o * inputs + i] as f64 + g[o * inputs + i] as f64);
            }
            let yi = y.map_or(0.0, |y| y[n * outputs + o] as f64);
            let r = ref_unit(z, ref_sigmoid(z), yi, wt);
            loss += r.loss;
            ent += r.h;
            loss_mag += r.loss_mag;
            delta[n * outputs + o] = r.delta;
            delta_mag[n * outputs + o] = r.delta_mag;
        }
    }
    let mut dw = vec![0.0; shape.w_len()];
    let mut dw_mag = vec![0.0; shape.w_len()];
    let mut db = vec![0.0; outputs];
    let mut db_mag = vec![0.0; outputs];
    for n in 0..batch {
        for o in 0..outputs {
            let dl = delta[n * outputs + o];
            let dm = delta_mag[n * outputs + o] + dl.abs();
            db[o] += dl;
            db_mag[o] += dm;
            for i in 0..inputs {
                let xv = x[n * inputs + i] as f64;
                dw[o * inputs + i] += dl * xv;
                dw_mag[o * inputs + i] += dm * xv.abs();
            }
        }
    }
    let s = wt.scale as f64;
    PassRef { loss: s * loss, entropy: s * ent, loss_mag: s.abs() * loss_mag, dw, dw_mag, db, db_mag }
}

// ---------------------------------------------------------------- raw memory (wasm tests)

/// Writes `v` at byte address `ptr` of this module's linear memory. For the wasm tests, which
/// lay records out as TypeScript does; `ptr` must be memory the test allocated.
pub fn poke<T: Copy>(ptr: u32, v: T) {
    // SAFETY: the tests only write blocks they allocated with room for a `T`.
    unsafe { (ptr as usize as *mut T).write_unaligned(v) }
}

/// Reads a `T` at byte address `ptr` (as `poke`).
pub fn peek<T: Copy>(ptr: u32) -> T {
    // SAFETY: the tests only read blocks they allocated with room for a `T` of plain data.
    unsafe { (ptr as usize as *const T).read_unaligned() }
}

/// Writes floats at `ptr` (as `poke`).
pub fn put(ptr: u32, v: &[f32]) {
    // SAFETY: the tests only write blocks they allocated with at least v.len() floats.
    unsafe { core::slice::from_raw_parts_mut(ptr as usize as *mut f32, v.len()).copy_from_slice(v) }
}

/// Reads `n` floats at `ptr` (as `poke`).
pub fn get(ptr: u32, n: usize) -> Vec<f32> {
    if n == 0 {
        return vec![];
    }
    // SAFETY: the tests only read blocks they allocated with at least n floats.
    unsafe { core::slice::from_raw_parts(ptr as usize as *const f32, n).to_vec() }
}

// ---------------------------------------------------------------- a layer for the drivers

/// What TypeScript does to the rules after a successful step (the core never writes them): a
/// rule that used its momentum buffer has it ready, an Adam rule has taken one more step.
pub fn advance(rules: [Rule; 3]) -> [Rule; 3] {
    rules.map(|r| Rule {
        buf_ready: r.buf_ready || r.uses_buffer(),
        step: if r.kind == RuleKind::Adam { r.step.saturating_add(1) } else { r.step },
        ..r
    })
}

/// Owns everything the drivers take for one layer: inputs, parameters, optimizer state,
/// scratch and outputs, and, when `adapt` is set, the adaptation pass's outputs.
#[derive(Clone)]
pub struct Fixture {
    pub shape: Shape,
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    pub w: Vec<f32>,
    pub g: Vec<f32>,
    pub b: Vec<f32>,
    pub bufs: [Vec<f32>; 3],
    pub exp_avg: [Vec<f32>; 3],
    pub exp_avg_sq: [Vec<f32>; 3],
    pub max_grad_norm: f32,
    pub rules: [Rule; 3],
    pub coefficients: LossCoefficients,
    pub pack: Vec<f32>,
    pub z: Vec<f32>,
    pub d: Vec<f32>,
    pub delta: Vec<f32>,
    pub unit_entropy: Vec<f32>,
    pub unit_loss: Vec<f32>,
    pub dw: Vec<f32>,
    pub db: Vec<f32>,
    /// The adaptation pass (gradients and step), or none.
    pub adapt: Option<Adapt>,
    /// Its outputs: sample weights (`batch`), positive fractions and mean predictions (`outputs`).
    pub adapt_out: [Vec<f32>; 3],
    /// The diversity term's prior and running marginal (read), and the new marginal (written).
    pub prior: Vec<f32>,
    pub marginal: Vec<f32>,
    pub running: Vec<f32>,
    /// Semi-supervised rows: how many, from the first, are labelled.
    pub labelled: Option<usize>,
    /// Its kept samples and diversity term after the last call.
    pub kept: u32,
    pub diversity_loss: f64,
}

impl Fixture {
    /// Random inputs, parameters and state from `seed`; plain SGD on every parameter.
    pub fn new(shape: Shape, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
        let r = 1.0 / (shape.inputs.max(1) as f64).sqrt();
        Fixture {
            shape,
            x: rng.vec(xn, 2.0),
            y: rng.targets(zn),
            w: rng.vec(wn, r),
            g: rng.vec(wn, r),
            b: rng.vec(on, 0.5),
            bufs: [rng.vec(wn, 0.1), rng.vec(wn, 0.1), rng.vec(on, 0.1)],
            exp_avg: [rng.vec(wn, 0.01), rng.vec(wn, 0.01), rng.vec(on, 0.01)],
            exp_avg_sq: [wn, wn, on].map(|n| rng.vec(n, 0.01).iter().map(|v| v * v).collect()),
            max_grad_norm: 0.0,
            rules: [Rule::sgd(0.1); 3],
            coefficients: LossCoefficients { entropy: 0.7, cross_entropy: 0.3, scale: 1.0 / shape.batch.max(1) as f32 },
            pack: vec![f32::NAN; entrograd_core::pack_len(shape).unwrap()],
            z: vec![0.0; zn],
            d: vec![0.0; zn],
            delta: vec![0.0; zn],
            unit_entropy: vec![0.0; zn],
            unit_loss: vec![0.0; zn],
            dw: vec![0.0; wn],
            db: vec![0.0; on],
            adapt: None,
            adapt_out: [vec![0.0; shape.batch], vec![0.0; on], vec![0.0; on]],
            prior: vec![0.25; on],
            marginal: vec![0.5; on],
            running: vec![0.0; on],
            labelled: None,
            kept: 0,
            diversity_loss: 0.0,
        }
    }

    /// The targets the objective reads (none when αC = 0; the labelled rows' only with
    /// semi-supervised rows).
    pub fn targets(&self) -> Option<&[f32]> {
        let n = self.labelled.unwrap_or(self.shape.batch) * self.shape.outputs;
        // A shorter y (a test's malformed case) is handed on whole.
        (self.coefficients.cross_entropy != 0.0).then_some(self.y.get(..n).unwrap_or(&self.y[..]))
    }

    /// The drivers' arguments, borrowing this fixture.
    pub fn parts(&mut self) -> (Layer<'_>, Work<'_>, Optimizer<'_>) {
        let [b0, b1, b2] = &mut self.bufs;
        let [m0, m1, m2] = &mut self.exp_avg;
        let [v0, v1, v2] = &mut self.exp_avg_sq;
        let [o0, o1, o2] = &mut self.adapt_out;
        (
            Layer { w: &mut self.w, g: &mut self.g, b: &mut self.b },
            Work {
                pack: &mut self.pack,
                z: &mut self.z,
                d: &mut self.d,
                delta: Some(&mut self.delta),
                unit_entropy: Some(&mut self.unit_entropy),
                unit_loss: Some(&mut self.unit_loss),
                dw: Some(&mut self.dw),
                db: Some(&mut self.db),
                adapt: self.adapt.map(|cfg| AdaptWork {
                    cfg,
                    sample_weights: o0,
                    positive: o1,
                    mean: o2,
                    prior: &self.prior,
                    marginal: &self.marginal,
                    running: &mut self.running,
                    kept: 0,
                    diversity_loss: f64::NAN,
                }),
            },
            Optimizer {
                rules: self.rules,
                bufs: [Some(b0), Some(b1), Some(b2)],
                exp_avg: [Some(m0), Some(m1), Some(m2)],
                exp_avg_sq: [Some(v0), Some(v1), Some(v2)],
                max_grad_norm: self.max_grad_norm,
            },
        )
    }

    /// Runs `call` on this fixture's parts (with copies of x and the targets), then keeps the
    /// adaptation pass's kept count and diversity term.
    pub fn run<T>(&mut self, call: impl FnOnce(&Input, &mut Layer, &mut Work, &mut Optimizer) -> T) -> T {
        let (x, y, shape, coefficients) =
            (self.x.clone(), self.targets().map(<[f32]>::to_vec), self.shape, self.coefficients);
        let input = Input { shape, x: &x, targets: y.as_deref(), coefficients, labelled: self.labelled };
        let (mut layer, mut work, mut opt) = self.parts();
        let r = call(&input, &mut layer, &mut work, &mut opt);
        let adapted = work.adapt.map(|a| (a.kept, a.diversity_loss));
        if let Some((kept, diversity_loss)) = adapted {
            (self.kept, self.diversity_loss) = (kept, diversity_loss);
        }
        r
    }

    /// One step; after a success the rules advance, as TypeScript advances them.
    pub fn step(&mut self) -> Result<Totals, Error> {
        let r = self.run(step::step);
        if r.is_ok() {
            self.rules = advance(self.rules);
        }
        r
    }

    pub fn gradients(&mut self) -> Result<Totals, Error> {
        self.run(|input, layer, work, _| gradients_pass(input, layer, work))
    }

    pub fn objective(&mut self) -> Result<Totals, Error> {
        self.run(|input, layer, work, _| objective_pass(input, layer, work))
    }

    pub fn forward(&mut self) -> Result<(), Error> {
        self.run(|input, layer, work, _| step::forward_pass(input, layer, work))
    }

    /// Parameters and optimizer state (the rules' counters included), bit for bit.
    pub fn state(&self) -> Vec<Vec<u32>> {
        let ready: Vec<u32> = self.rules.iter().map(|r| r.buf_ready as u32).collect();
        let steps: Vec<u32> = self.rules.iter().map(|r| r.step).collect();
        let mut v = vec![bits(&self.w), bits(&self.g), bits(&self.b), ready, steps];
        for k in 0..3 {
            v.extend([bits(&self.bufs[k]), bits(&self.exp_avg[k]), bits(&self.exp_avg_sq[k])]);
        }
        v
    }
}
