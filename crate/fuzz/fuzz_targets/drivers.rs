//! libFuzzer target: the drivers (`step::forward_pass`, `objective_pass`, `gradients_pass`,
//! `step`) on shapes, slice lengths, values (any bits), loss coefficients, rules (SGD and Adam,
//! any fields) and clipping norms decoded from the fuzzer's bytes. A panic is a crash. Checked:
//! the rules are never changed; a failed call leaves parameters, buffers and moments bitwise as
//! they were; InvalidArgs writes nothing at all; a successful call leaves no NaN or ±∞ in
//! anything it wrote.

#![no_main]

use arbitrary::{Result, Unstructured};
use entrograd_core::abi::AdaptRecord;
use entrograd_core::adapt::{Adapt, AdaptWork};
use entrograd_core::step::{self, forward_pass, gradients_pass, objective_pass};
use entrograd_core::{Error, Input, Layer, LossCoefficients, Optimizer, Rule, RuleKind, Shape, Work};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn f32_any(u: &mut Unstructured) -> Result<f32> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => f32::from_bits(u.arbitrary()?),
        1 => {
            *u.choose(&[0.0, -0.0, 1.0, -1.0, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, f32::NAN, f32::INFINITY])?
        }
        _ => (u.int_in_range(-2000i32..=2000)? as f32) / 500.0,
    })
}

fn vec(u: &mut Unstructured, n: usize) -> Result<Vec<f32>> {
    // Usually the right length, sometimes off by a little.
    let n = if u.ratio(1u8, 16)? { (n as isize + u.int_in_range(-2isize..=2)?).max(0) as usize } else { n };
    (0..n).map(|_| f32_any(u)).collect()
}

fn rule(u: &mut Unstructured) -> Result<Rule> {
    let kind = *u.choose(&[RuleKind::Frozen, RuleKind::Sgd, RuleKind::Adam])?;
    Ok(Rule {
        kind,
        lr: f32_any(u)?,
        weight_decay: f32_any(u)?,
        momentum: f32_any(u)?,
        dampening: f32_any(u)?,
        nesterov: u.arbitrary()?,
        buf_ready: u.arbitrary()?,
        one_minus_beta1: f32_any(u)?,
        one_minus_beta2: f32_any(u)?,
        eps: f32_any(u)?,
        step: u.arbitrary()?,
    })
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn run(u: &mut Unstructured) -> Result<()> {
    let shape = Shape::new(u.int_in_range(0..=9)?, u.int_in_range(0..=9)?, u.int_in_range(0..=9)?);
    let (xn, wn, zn, on) = (shape.x_len(), shape.w_len(), shape.z_len(), shape.outputs);
    let x = vec(u, xn)?;
    let y = vec(u, zn)?;
    let (mut w, mut g, mut b) = (vec(u, wn)?, vec(u, wn)?, vec(u, on)?);
    let pn = entrograd_core::pack_len(shape).unwrap_or(0);
    let (mut pack, mut z, mut d) = (vec(u, pn)?, vec(u, zn)?, vec(u, zn)?);
    let (mut delta, mut unit_entropy, mut ul, mut dw, mut db) =
        (vec(u, zn)?, vec(u, zn)?, vec(u, zn)?, vec(u, wn)?, vec(u, on)?);
    let lens = [wn, wn, on];
    let mut bufs = [vec(u, lens[0])?, vec(u, lens[1])?, vec(u, lens[2])?];
    let mut ms = [vec(u, lens[0])?, vec(u, lens[1])?, vec(u, lens[2])?];
    let mut vs = [vec(u, lens[0])?, vec(u, lens[1])?, vec(u, lens[2])?];
    let rules = [rule(u)?, rule(u)?, rule(u)?];
    let coefficients = LossCoefficients { entropy: f32_any(u)?, cross_entropy: f32_any(u)?, scale: f32_any(u)? };
    let max_grad_norm = if u.arbitrary()? { 0.0 } else { f32_any(u)? };
    let present: [bool; 11] = u.arbitrary()?;
    let call = u.int_in_range(0u8..=3)?;
    let targets = if u.arbitrary()? { Some(&y[..]) } else { None };
    // Test-time adaptation (gradients and step), any settings the record can decode.
    let adapt_cfg = if u.ratio(1u8, 3)? {
        let record = AdaptRecord {
            flags: u.int_in_range(0u32..=7)?,
            max_entropy: f32_any(u)?,
            diversity: f32_any(u)?,
            marginal_momentum: f32_any(u)?,
            ..AdaptRecord::default()
        };
        Adapt::decode(&record)
    } else {
        None
    };
    let (mut sample_weights, mut positive, mut mean) = (vec(u, shape.batch)?, vec(u, on)?, vec(u, on)?);
    let (prior, marginal, mut running) = (vec(u, on)?, vec(u, on)?, vec(u, on)?);

    let params_before = (bits(&w), bits(&g), bits(&b));
    let state_before: Vec<Vec<u32>> = bufs.iter().chain(&ms).chain(&vs).map(|v| bits(v)).collect();
    let all_before: Vec<Vec<u32>> =
        [&pack, &z, &d, &delta, &unit_entropy, &ul, &dw, &db].iter().map(|v| bits(v)).collect();

    let (result, rules_after) = {
        let mut layer = Layer { w: &mut w, g: &mut g, b: &mut b };
        let mut work = Work {
            pack: &mut pack,
            z: &mut z,
            d: &mut d,
            delta: present[0].then_some(&mut delta[..]),
            unit_entropy: present[1].then_some(&mut unit_entropy[..]),
            unit_loss: present[2].then_some(&mut ul[..]),
            dw: present[3].then_some(&mut dw[..]),
            db: present[4].then_some(&mut db[..]),
            adapt: adapt_cfg.map(|cfg| AdaptWork {
                cfg,
                sample_weights: &mut sample_weights[..],
                positive: &mut positive[..],
                mean: &mut mean[..],
                prior: &prior[..],
                marginal: &marginal[..],
                running: &mut running[..],
                kept: 0,
                diversity_loss: f64::NAN,
            }),
        };
        let input = Input { shape, x: &x, targets, coefficients, labelled: None };
        match call {
            0 => (forward_pass(&input, &layer, &mut work), rules),
            1 => (objective_pass(&input, &layer, &mut work).map(|_| ()), rules),
            2 => (gradients_pass(&input, &layer, &mut work).map(|_| ()), rules),
            _ => {
                let [b0, b1, b2] = &mut bufs;
                let [m0, m1, m2] = &mut ms;
                let [v0, v1, v2] = &mut vs;
                let mut opt = Optimizer {
                    rules,
                    bufs: [
                        present[5].then_some(&mut b0[..]),
                        present[6].then_some(&mut b1[..]),
                        present[7].then_some(&mut b2[..]),
                    ],
                    exp_avg: [
                        present[8].then_some(&mut m0[..]),
                        present[9].then_some(&mut m1[..]),
                        present[10].then_some(&mut m2[..]),
                    ],
                    exp_avg_sq: [
                        present[8].then_some(&mut v0[..]),
                        present[9].then_some(&mut v1[..]),
                        present[10].then_some(&mut v2[..]),
                    ],
                    max_grad_norm,
                };
                let r = step::step(&input, &mut layer, &mut work, &mut opt).map(|_| ());
                (r, opt.rules)
            }
        }
    };
    let state_after: Vec<Vec<u32>> = bufs.iter().chain(&ms).chain(&vs).map(|v| bits(v)).collect();
    // The rules are input only (the caller advances buf_ready and the step counts).
    assert!(format!("{rules_after:?}") == format!("{rules:?}"), "a call changed the rules");
    match result {
        Err(e) => {
            assert!((bits(&w), bits(&g), bits(&b)) == params_before, "{e:?} changed the parameters");
            assert!(state_after == state_before, "{e:?} changed optimizer state");
            if e == Error::InvalidArgs {
                let all_after: Vec<Vec<u32>> =
                    [&pack, &z, &d, &delta, &unit_entropy, &ul, &dw, &db].iter().map(|v| bits(v)).collect();
                assert!(all_after == all_before, "InvalidArgs wrote scratch");
            }
        }
        Ok(()) => {
            assert!(finite(&z) && finite(&d), "z or d not finite after Ok");
            if call >= 1 {
                assert!(!present[1] || finite(&unit_entropy), "unit_entropy not finite after Ok");
                assert!(!present[2] || finite(&ul), "unit_loss not finite after Ok");
            }
            if call >= 2 {
                assert!(finite(&dw) && finite(&db) && finite(&delta), "gradients not finite after Ok");
            }
            if call == 3 {
                for (k, p) in [&w, &g, &b].into_iter().enumerate() {
                    assert!(rules[k].kind == RuleKind::Frozen || finite(p), "parameter {k} not finite after Ok");
                }
            }
        }
    }
    Ok(())
}
