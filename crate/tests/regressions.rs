//! Regression tests for bugs the property tests and fuzzers found (issue 7). Each test names
//! the property that found it and the input it shrank to.

mod common;

use common::{flavours, outs};
use entrograd_core::{entropy_bits, LossCoefficients};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// proptest_kernels::objective_never_gives_nan_for_finite_z shrank to z = -2.712e-6: the
/// roundings of `(log1p(e) + a·e/(1+e))/ln2` gave H = 1.0000001 bits, above the largest binary
/// entropy there is. H is now capped at 1 bit in every flavour (NaN still propagates).
#[test]
fn entropy_never_exceeds_one_bit() {
    let mut z: Vec<f32> = vec![-2.712_015e-6, 3.270_477_5e-4, -6.482_005e-5, 1e-8, -1e-7, 0.0, -0.0];
    let mut rng = common::Rng::new(11);
    for _ in 0..4096 {
        z.push(rng.sym(1e-3));
    }
    for &v in &z {
        let h = entropy_bits(v);
        assert!(h <= 1.0, "entropy_bits({v:e}) = {h}");
    }
    assert!(entropy_bits(f32::NAN).is_nan());
    for k in flavours() {
        let n = z.len();
        let mut d = vec![0.0; n];
        (k.sigmoid)(&z, &mut d);
        let w = LossCoefficients { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 };
        let mut entropy = vec![f32::NAN; n];
        let t = (k.objective)(&z, &mut d, None, &w, outs(None, Some(&mut entropy), None));
        for (i, &h) in entropy.iter().enumerate() {
            assert!((0.0..=1.0).contains(&h), "{}: H({:e}) = {h}", k.name, z[i]);
        }
        assert!(t.entropy <= n as f64);
        // A NaN z still gives a NaN entropy (the cap must not hide it).
        let zn = [0.5, f32::NAN, 1e-6, -2.0, f32::NAN];
        let mut dn = [0.0; 5];
        (k.sigmoid)(&zn, &mut dn);
        let mut un = [0.0; 5];
        (k.objective)(&zn, &mut dn, None, &w, outs(None, Some(&mut un), None));
        assert!(un[1].is_nan() && un[4].is_nan(), "{}: {un:?}", k.name);
    }
}

/// Found reading the bindings while writing fuzz_abi: `forward`, `entropy` and `gradients`
/// accepted `w`, `g` or `b` overlapping another read-only region (say `x`), then built a `&mut`
/// slice of them beside a `&` slice of the same floats: undefined behaviour in Rust even though
/// nothing is written. The parameters now count as written regions in every export, so such a
/// block is status 5 (TypeScript never lays one out).
#[cfg(target_arch = "wasm32")]
#[test]
fn parameters_overlapping_an_input_are_rejected_in_every_export() {
    use common::poke;
    use entrograd_core::abi::Args;
    use entrograd_core::bindings::{
        allocate, forward_export, gradients_export, objective_export, pack_floats, release,
    };
    let (batch, inputs, outputs) = (2u32, 4u32, 2u32);
    let floats = 512;
    let mem = allocate(floats);
    let at = allocate(32);
    let f = |k: u32| mem + 4 * k;
    let pack = pack_floats(batch, inputs, outputs);
    assert!(pack <= 256);
    // x at 0..8, w at 0..8 too (the overlap), g 16.., b 32.., z 48.., d 56.., delta 64..,
    // dw 72.., db 80.., the results 96.., the packing scratch 256..
    let mut args = Args {
        batch,
        inputs,
        outputs,
        x: f(0),
        w: f(0),
        g: f(16),
        b: f(32),
        z: f(48),
        d: f(56),
        delta: f(64),
        dw: f(72),
        db: f(80),
        results: f(96),
        pack: f(256),
        pack_len: pack,
        entropy_weight: 1.0,
        scale: 1.0,
        ..Args::default()
    };
    poke(at, args);
    for export in [forward_export, objective_export, gradients_export] {
        assert_eq!(export(at), 5);
    }
    // Moved apart, the same block is fine.
    args.w = f(88);
    poke(at, args);
    for export in [forward_export, objective_export, gradients_export] {
        assert_eq!(export(at), 0);
    }
    release(at, 32);
    release(mem, floats);
}

/// fuzz_abi, after issue 5 added gradient clipping: a step with `max_grad_norm` negative, NaN or
/// infinite returned status 5 (from the driver) but the bindings then wrote NaN into the loss and
/// entropy slots, where status 5 promises that nothing is written. The norm is now checked with
/// the rest of the block, and a driver's status 5 writes no results either.
#[cfg(target_arch = "wasm32")]
#[test]
fn an_invalid_max_grad_norm_is_status_5_and_writes_nothing() {
    use common::{peek, poke};
    use entrograd_core::abi::{Args, Results, RuleRecord};
    use entrograd_core::bindings::{allocate, pack_floats, release, step_export};
    use entrograd_core::RuleKind;
    let floats = 512;
    let mem = allocate(floats);
    let at = allocate(32);
    let rules = allocate(48);
    let f = |k: u32| mem + 4 * k;
    let pack = pack_floats(2, 4, 2);
    assert!(pack <= 256);
    // SGD, no momentum, on every parameter.
    poke(rules, [RuleRecord { kind: RuleKind::Sgd.code(), lr: 0.1, ..RuleRecord::default() }; 3]);
    let mut args = Args {
        batch: 2,
        inputs: 4,
        outputs: 2,
        x: f(0),
        w: f(8),
        g: f(16),
        b: f(24),
        z: f(40),
        d: f(48),
        delta: f(56),
        dw: f(64),
        db: f(72),
        results: f(80),
        pack: f(256),
        pack_len: pack,
        entropy_weight: 1.0,
        scale: 0.5,
        rules,
        ..Args::default()
    };
    for bad in [-1.0f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        args.max_grad_norm = bad;
        poke(at, args);
        let sentinel = Results { loss: 7.0, entropy: 7.0, diversity_loss: 7.0, kept: 7, reserved: 7 };
        poke(args.results, sentinel);
        assert_eq!(step_export(at), 5, "max_grad_norm {bad}");
        assert_eq!(peek::<Results>(args.results), sentinel, "max_grad_norm {bad}: results written");
    }
    args.max_grad_norm = 1.0;
    poke(at, args);
    assert_eq!(step_export(at), 0);
    release(rules, 48);
    release(at, 32);
    release(mem, floats);
}
