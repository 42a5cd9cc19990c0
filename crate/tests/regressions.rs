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
        let t = (k.objective)(&z, &d, None, &w, None, Some(&mut units), None);
        for (i, &h) in units.iter().enumerate() {
            assert!((0.0..=1.0).contains(&h), "{}: H({:e}) = {h}", k.name, z[i]);
        }
        assert!(t.entropy <= n as f64);
        // A NaN z still gives a NaN entropy (the cap must not hide it).
        let zn = [0.5, f32::NAN, 1e-6, -2.0, f32::NAN];
        let mut dn = [0.0; 5];
        (k.sigmoid)(&zn, &mut dn);
        let mut un = [0.0; 5];
        (k.objective)(&zn, &dn, None, &w, None, Some(&mut un), None);
        assert!(un[1].is_nan() && un[4].is_nan(), "{}: {un:?}", k.name);
    }
}
