//! Regression tests for bugs the property tests and fuzzers found (issue 7). Each test names
//! the property that found it and the input it shrank to.

mod common;

use entrograd_core::flavour;
use entrograd_core::{entropy_bits, Weights};
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
    for k in flavour::all() {
        let n = z.len();
        let mut d = vec![0.0; n];
        (k.sigmoid)(&z, &mut d);
        let w = Weights { entropy: 1.0, cross_entropy: 0.0, scale: 1.0 };
        let mut units = vec![f32::NAN; n];
        let t = (k.objective)(&z, &mut d, None, &w, None, Some(&mut units), None);
        for (i, &h) in units.iter().enumerate() {
            assert!((0.0..=1.0).contains(&h), "{}: H({:e}) = {h}", k.name, z[i]);
        }
        assert!(t.entropy <= n as f64);
        // A NaN z still gives a NaN entropy (the cap must not hide it).
        let zn = [0.5, f32::NAN, 1e-6, -2.0, f32::NAN];
        let mut dn = [0.0; 5];
        (k.sigmoid)(&zn, &mut dn);
        let mut un = [0.0; 5];
        (k.objective)(&zn, &mut dn, None, &w, None, Some(&mut un), None);
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
    use entrograd_core::bindings::{allocate, entropy_export, forward_export, gradients_export, pack_floats, release};
    let (batch, inputs, outputs) = (2u32, 4u32, 2u32);
    let floats = 512;
    let mem = allocate(floats);
    let args = allocate(32);
    let f = |k: u32| mem + 4 * k;
    let set = |slot: u32, v: u32| {
        // SAFETY: slot < 32 of the args block allocated above.
        unsafe { (args as usize as *mut u32).add(slot as usize).write(v) }
    };
    set(0, batch);
    set(1, inputs);
    set(2, outputs);
    // x at 0..8, w at 0..8 too (the overlap), g 16.., b 32.., z 48.., d 56.., delta 64..,
    // dw 72.., db 80.., the packing scratch 256..
    for (slot, at) in [(3, 0), (5, 0), (6, 16), (7, 32), (9, 48), (10, 56), (11, 64), (13, 72), (14, 80), (20, 256)] {
        set(slot, f(at));
    }
    let pack = pack_floats(batch, inputs, outputs);
    assert!(pack <= 256);
    set(8, 0);
    set(21, pack);
    set(4, 0);
    set(12, 0);
    set(19, 0);
    set(15, 1.0f32.to_bits());
    set(16, 0);
    set(17, 1.0f32.to_bits());
    for export in [forward_export, entropy_export, gradients_export] {
        assert_eq!(export(args), 5);
    }
    // Moved apart, the same block is fine.
    set(5, f(88));
    for export in [forward_export, entropy_export, gradients_export] {
        assert_eq!(export(args), 0);
    }
    release(args, 32);
    release(mem, floats);
}

/// fuzz_abi, after issue 5 added gradient clipping: a step with `max_grad_norm` negative, NaN or
/// infinite returned status 5 (from the driver) but the bindings then wrote NaN into the loss and
/// entropy slots, where status 5 promises that nothing is written. The norm is now checked with
/// the rest of the block, and a driver's status 5 writes no results either.
#[cfg(target_arch = "wasm32")]
#[test]
fn an_invalid_max_grad_norm_is_status_5_and_writes_nothing() {
    use entrograd_core::bindings::{allocate, pack_floats, release, step_export};
    let floats = 512;
    let mem = allocate(floats);
    let args = allocate(32);
    let rules = allocate(48);
    let f = |k: u32| mem + 4 * k;
    let set = |base: u32, slot: u32, v: u32| {
        // SAFETY: slot < 32 of the args block, or < 48 of the rule records, allocated above.
        unsafe { (base as usize as *mut u32).add(slot as usize).write(v) }
    };
    let get = |base: u32, slot: u32| -> u32 {
        // SAFETY: as for `set`.
        unsafe { (base as usize as *const u32).add(slot as usize).read() }
    };
    set(args, 0, 2);
    set(args, 1, 4);
    set(args, 2, 2);
    for (slot, at) in [(3, 0), (5, 8), (6, 16), (7, 24), (9, 40), (10, 48), (11, 56), (13, 64), (14, 72), (20, 256)] {
        set(args, slot, f(at));
    }
    for slot in [4, 8, 12, 19, 23] {
        set(args, slot, 0);
    }
    let pack = pack_floats(2, 4, 2);
    assert!(pack <= 256);
    set(args, 21, pack);
    set(args, 15, 1.0f32.to_bits());
    set(args, 16, 0);
    set(args, 17, 0.5f32.to_bits());
    set(args, 18, rules);
    for k in 0..3 {
        set(rules, 16 * k, 1); // SGD, no momentum
        set(rules, 16 * k + 1, 0.1f32.to_bits());
    }
    for bad in [-1.0f32, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        set(args, 22, bad.to_bits());
        for slot in 24..28 {
            set(args, slot, 0x1234_5678);
        }
        assert_eq!(step_export(args), 5, "max_grad_norm {bad}");
        assert!((24..28).all(|s| get(args, s) == 0x1234_5678), "max_grad_norm {bad}: results written");
    }
    set(args, 22, 1.0f32.to_bits());
    assert_eq!(step_export(args), 0);
    release(rules, 48);
    release(args, 32);
    release(mem, floats);
}
