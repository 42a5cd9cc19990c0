//! Every flavour of every kernel against the f64 reference (`common`). On the host this is
//! the scalar flavour; under wasm (`scripts/test-rust.sh`) it is scalar, and SIMD128 too when
//! built with `+simd128`.

mod common;

use common::{bits, check_flavour, flavours, gradient_source, outs, pairs_of, Kernels, Rng};
use entrograd_core::pack::weights_len;
use entrograd_core::{adam_update, entropy_bits, sgd_update, LossCoefficients, Rule, RuleKind, Shape};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn every_flavour_matches_the_reference() {
    for k in flavours() {
        check_flavour(k);
    }
}

#[test]
fn simd_flavour_is_compiled_when_expected() {
    let names: Vec<_> = flavours().iter().map(|k| k.name).collect();
    let want: &[&str] = if entrograd_core::SIMD { &["scalar", "simd128"] } else { &["scalar"] };
    assert_eq!(names, want);
    // The drivers run the last one.
    assert_eq!(entrograd_core::kernels::FLAVOUR, *want.last().unwrap());
}

#[test]
fn entropy_exact_points_and_no_nan() {
    assert_eq!(entropy_bits(0.0), 1.0);
    assert_eq!(entropy_bits(-0.0), 1.0);
    assert_eq!(entropy_bits(1e4), 0.0);
    assert_eq!(entropy_bits(-1e4), 0.0);
    assert_eq!(entropy_bits(f32::MAX), 0.0);
    assert_eq!(entropy_bits(f32::MIN), 0.0);
    let mut z = -1e4f32;
    while z < 1e4 {
        let h = entropy_bits(z);
        assert!(h.is_finite() && (0.0..=1.0).contains(&h), "H({z}) = {h}");
        assert_eq!(h.to_bits(), entropy_bits(-z).to_bits(), "H is even at {z}");
        z = if z.abs() < 1.0 { z + 0.0137 } else { z * if z < 0.0 { 0.97 } else { 1.03 } };
    }
    assert!(entropy_bits(f32::NAN).is_nan());
    // It is also the sigmoid's entropy by the definition, where that is well conditioned.
    for i in -200..=200 {
        let z = i as f64 * 0.05;
        let s = common::ref_sigmoid(z);
        let want = -(s * s.log2() + (1.0 - s) * (1.0 - s).log2());
        let got = entropy_bits(z as f32) as f64;
        assert!((got - want).abs() <= 1e-6 * want + 1e-7, "H({z}) = {got} vs {want}");
    }
}

/// The flavours do the same operations in the same order: their results are bit-identical
/// (packing, GEMMs with their fixed order of summation, elementwise work, updates).
#[test]
fn flavours_agree_bitwise() {
    let all = flavours();
    let base: &Kernels = &all[0];
    let mut rng = Rng::new(3);
    for k in &all[1..] {
        for shape in common::shapes() {
            let x = rng.vec(shape.x_len(), 1.0);
            let w = rng.vec(shape.w_len(), 1.0);
            let g = rng.vec(shape.w_len(), 1.0);
            let b = rng.vec(shape.outputs, 1.0);
            let y = rng.targets(shape.z_len());
            let run = |k: &Kernels| {
                let mut packed = vec![0.0; weights_len(shape).unwrap()];
                let mut z = vec![0.0; shape.z_len()];
                let mut d = vec![0.0; shape.z_len()];
                let mut delta = vec![0.0; shape.z_len()];
                let mut entropy = vec![0.0; shape.z_len()];
                let mut dw = vec![0.0; shape.w_len()];
                let mut db = vec![0.0; shape.outputs];
                let max_wg = (k.pack_weights)(&w, &g, &mut packed, shape);
                let src = gradient_source(k, shape, &x);
                (k.gemm)(&x, &packed, &b, &mut z, shape);
                for v in z.iter_mut().step_by(5) {
                    *v *= 100.0;
                }
                (k.sigmoid)(&z, &mut d);
                let wt = LossCoefficients { entropy: 0.5, cross_entropy: 0.5, scale: 0.1 };
                let mut d2 = vec![0.0; shape.z_len()];
                (k.objective)(&z, &mut d2, Some(&y), &wt, outs(Some(&mut delta), Some(&mut entropy), None));
                assert!(bits(&d2) == bits(&d));
                let max_dw = (k.weight_gradient)(&pairs_of(&delta, shape), &src, &mut dw, shape);
                let max_db = (k.bias_gradient)(&delta, &mut db, shape);
                let mut th = w.clone();
                let mut buf = g.clone();
                let r = Rule { momentum: 0.9, nesterov: true, weight_decay: 0.01, buf_ready: true, ..Rule::sgd(0.1) };
                (k.sgd_update)(&mut th, &dw, Some(&mut buf), &r, true);
                let mut ta = w.clone();
                let mut m: Vec<f32> = w.iter().map(|x| 0.1 * x).collect();
                let mut v: Vec<f32> = g.iter().map(|x| x * x).collect();
                let a = Rule { weight_decay: 0.01, step: 3, ..Rule::adam(0.01) };
                (k.adam_update)(&mut ta, &dw, &mut m, &mut v, &entrograd_core::adam::Scalars::of(&a), true);
                [
                    bits(&packed),
                    bits(&src),
                    bits(&[max_wg[0], max_wg[1], max_dw, max_db]),
                    bits(&z),
                    bits(&d),
                    bits(&delta),
                    bits(&entropy),
                    bits(&dw),
                    bits(&db),
                    bits(&th),
                    bits(&buf),
                    bits(&ta),
                    bits(&m),
                    bits(&v),
                ]
            };
            let (a, c) = (run(base), run(k));
            let names = [
                "packed weights",
                "gradient's x",
                "maxima",
                "z",
                "d",
                "delta",
                "entropy",
                "dw",
                "db",
                "theta",
                "buf",
                "adam theta",
                "adam m",
                "adam v",
            ];
            for (i, name) in names.iter().enumerate() {
                assert!(a[i] == c[i], "{} vs {}: {name} differs at {shape:?}", base.name, k.name);
            }
        }
    }
}

#[test]
fn frozen_rule_touches_nothing() {
    let mut th = vec![1.0, 2.0, 3.0];
    let mut buf = vec![4.0, 5.0, 6.0];
    let r = Rule { kind: RuleKind::Frozen, momentum: 0.9, ..Rule::sgd(1.0) };
    assert!(sgd_update(&mut th, &[f32::NAN; 3], Some(&mut buf), &r, true));
    assert_eq!((th, buf), (vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]));
}

#[test]
fn adam_frozen_and_sgd_rules_leave_moments_alone() {
    let (mut th, mut m, mut v) = (vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0], vec![7.0, 8.0, 9.0]);
    for r in [Rule::FROZEN, Rule::sgd(0.1)] {
        assert!(adam_update(&mut th, &[f32::NAN; 3], &mut m, &mut v, &r, true));
    }
    assert_eq!((th, m, v), (vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0], vec![7.0, 8.0, 9.0]));
    // An Adam rule is not SGD's business either.
    let (mut th, mut buf) = (vec![1.0, 2.0], vec![3.0, 4.0]);
    assert!(sgd_update(&mut th, &[f32::NAN; 2], Some(&mut buf), &Rule::adam(0.1), true));
    assert_eq!((th, buf), (vec![1.0, 2.0], vec![3.0, 4.0]));
}

/// The first step moves each parameter by lr·sign(g) (less ε), whatever β: the bias correction.
#[test]
fn adam_first_step_is_lr_times_sign() {
    use entrograd_core::adam::{pow_u32, Scalars};
    assert_eq!(pow_u32(0.9, 0), 1.0);
    assert_eq!(pow_u32(0.5, 10), 1.0 / 1024.0);
    for q in [0.1f32, 0.001, 0.5] {
        let r = Rule { one_minus_beta1: q, one_minus_beta2: q * 0.1, eps: 0.0, ..Rule::adam(0.01) };
        let (mut th, mut m, mut v) = (vec![0.0f32; 3], vec![0.0f32; 3], vec![0.0f32; 3]);
        assert!(adam_update(&mut th, &[2.0, -0.5, 1e-3], &mut m, &mut v, &r, true));
        for (t, want) in th.iter().zip([-0.01, 0.01, -0.01]) {
            assert!((t - want).abs() <= 1e-7, "q={q}: {t} vs {want}");
        }
        let s = Scalars::of(&r);
        assert_eq!(s.decay, 1.0);
    }
}

#[test]
fn zero_sizes() {
    for shape in [Shape::new(0, 3, 2), Shape::new(2, 0, 3), Shape::new(3, 2, 0), Shape::new(0, 0, 0)] {
        for k in flavours() {
            let x = vec![0.5; shape.x_len()];
            let w = vec![0.25; shape.w_len()];
            let b = vec![0.125; shape.outputs];
            let mut z = vec![f32::NAN; shape.z_len()];
            let mut d = vec![f32::NAN; shape.z_len()];
            let mut packed = vec![f32::NAN; weights_len(shape).unwrap()];
            (k.pack_weights)(&w, &w, &mut packed, shape);
            let src = gradient_source(k, shape, &x);
            (k.gemm)(&x, &packed, &b, &mut z, shape);
            (k.sigmoid)(&z, &mut d);
            assert!(z.iter().all(|&v| v == 0.125), "{} {shape:?}", k.name);
            let mut dw = vec![f32::NAN; shape.w_len()];
            let mut db = vec![f32::NAN; shape.outputs];
            assert!((k.weight_gradient)(&pairs_of(&z, shape), &src, &mut dw, shape) == 0.0);
            (k.bias_gradient)(&z, &mut db, shape);
            assert!(
                dw.iter().all(|&v| v == 0.0) && db.iter().all(|&v| v == 0.0) == (shape.batch == 0 || db.is_empty())
            );
        }
    }
}

/// The weight gradient reads `|δ| < DELTA_FLUSH` as 0 (no subnormal products from saturated
/// units), in every flavour; `DELTA_FLUSH` itself, NaN and larger values pass, and `db` keeps
/// every `δ`.
#[test]
fn tiny_delta_is_flushed_in_the_weight_gradient_only() {
    use entrograd_core::pack::DELTA_FLUSH;
    let below = f32::from_bits(DELTA_FLUSH.to_bits() - 1);
    let delta = [1.0f32, below, -below, 1e-38, DELTA_FLUSH, -DELTA_FLUSH, 2.0, f32::from_bits(1)];
    // 8 rows, 1 output: dw[0][i] = Σₙ δ[n]·x[n][i].
    let shape = Shape::new(8, 3, 1);
    let x: Vec<f32> = (0..24).map(|k| 1.0 + k as f32).collect();
    for k in flavours() {
        let pairs = common::pairs_of(&delta, shape);
        let want_pairs = [1.0f32, 0.0, 0.0, 0.0, DELTA_FLUSH, -DELTA_FLUSH, 2.0, 0.0];
        assert_eq!(bits(&pairs), bits(&want_pairs), "{}", k.name);
        let mut dw = vec![f32::NAN; 3];
        (k.weight_gradient)(&pairs, &x, &mut dw, shape);
        for i in 0..3 {
            let want = 1.0 * x[i] + DELTA_FLUSH * x[12 + i] - DELTA_FLUSH * x[15 + i] + 2.0 * x[18 + i];
            assert_eq!(dw[i], want, "{} dw[{i}]", k.name);
        }
        let mut db = vec![f32::NAN; 1];
        (k.bias_gradient)(&delta, &mut db, shape);
        let want: f32 = delta.iter().sum();
        assert_eq!(db[0], want, "{}: db sums every δ", k.name);
    }
}
