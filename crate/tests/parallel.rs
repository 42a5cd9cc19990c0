//! The threads module's split drivers (`parallel::split`) and the protocol they run on
//! (`parallel::{Team, work}`), with std threads as the helpers: every chunk runs once whoever
//! claims it, helpers really take part, a model's seats are respected, a failed helper ends the
//! wait instead of hanging it; and the split drivers give bitwise the one-thread drivers' arrays
//! (the `f64` sums to rounding), bitwise the same for any number of helpers, and the same
//! statuses. Host only: the helpers are std threads.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::{bits, Fixture};
use entrograd_core::parallel::{self, split, Control, Team, CONTROL_WORDS_READ};
use entrograd_core::{Adapt, Error, Rule, Shape, Totals};

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// Tickets of all tests' calls (any non-zero value newer than the last one works).
static TICKET: AtomicU32 = AtomicU32::new(0);

/// How long a call may take before the watchdog ends it (`parallel::abandon`, as a worker does
/// when its helper traps): a call that would hang fails its test instead.
const DEADLINE: Duration = Duration::from_secs(60);

/// How a call ended, besides its result.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Ending {
    /// A helper panicked (its chunk undone) and the caller stopped waiting for it.
    failed: bool,
    /// The watchdog ended the call.
    timed_out: bool,
}

/// Runs `f` as one call on `ctrl` with `helpers` std threads taking part; returns its result,
/// the chunks each helper ran and how it ended. A helper that panics marks the call broken,
/// as its worker does when a helper traps (`ts/threads/worker.ts`); a watchdog does the same
/// after `deadline`.
fn call_within<T: Send>(
    ctrl: &Control,
    helpers: usize,
    seats: u32,
    deadline: Duration,
    f: impl FnOnce(&mut Team) -> T + Send,
) -> (T, Vec<u32>, Ending) {
    let ticket = TICKET.fetch_add(1, Ordering::Relaxed) + 1;
    let finished = AtomicBool::new(false);
    let timed_out = AtomicBool::new(false);
    thread::scope(|s| {
        let hs: Vec<_> = (0..helpers)
            .map(|_| {
                s.spawn(move || {
                    let r = std::panic::catch_unwind(|| unsafe { parallel::work(ctrl, ticket, 50_000_000) });
                    r.unwrap_or_else(|_| {
                        parallel::abandon(ctrl);
                        0
                    })
                })
            })
            .collect();
        let (finished, timed_out) = (&finished, &timed_out);
        s.spawn(move || {
            let t0 = Instant::now();
            while !finished.load(Ordering::Acquire) {
                if t0.elapsed() > deadline {
                    timed_out.store(true, Ordering::Release);
                    parallel::abandon(ctrl);
                    return;
                }
                thread::sleep(Duration::from_millis(5));
            }
        });
        let mut team = Team::open(ctrl, ticket, seats);
        let r = f(&mut team);
        let failed = team.failed();
        drop(team);
        finished.store(true, Ordering::Release);
        let ran = hs.into_iter().map(|h| h.join().unwrap()).collect();
        (r, ran, Ending { failed, timed_out: timed_out.load(Ordering::Acquire) })
    })
}

/// `call_within` for calls that must end normally.
fn call<T: Send>(ctrl: &Control, helpers: usize, seats: u32, f: impl FnOnce(&mut Team) -> T + Send) -> (T, Vec<u32>) {
    let (r, ran, ending) = call_within(ctrl, helpers, seats, DEADLINE, f);
    assert_eq!(ending, Ending::default(), "a helper failed or the call hung");
    (r, ran)
}

#[test]
fn the_words_typescript_reads() {
    // ts/threads/arena.ts, ControlU32: Broken, Helped, Stalls.
    assert_eq!(CONTROL_WORDS_READ, [7, 8, 9]);
    assert_eq!(parallel::control_floats() * 4, core::mem::size_of::<Control>());
}

#[test]
fn every_chunk_runs_once_whoever_claims_it() {
    let ctrl = Control::new();
    for helpers in [0, 1, 3] {
        let ((), _) = call(&ctrl, helpers, helpers as u32, |team| {
            for n in [1usize, 2, 7, 64, 3, 40] {
                let counts: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                team.run(n, &|k| {
                    counts[k].fetch_add(1, Ordering::Relaxed);
                });
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "{helpers} helpers, {n} chunks");
            }
        });
    }
}

#[test]
fn helpers_take_part_and_seats_limit_them() {
    let ctrl = Control::new();
    for (helpers, seats) in [(1usize, 1u32), (3, 1), (3, 2)] {
        let who = Mutex::new(Vec::new());
        let ((), ran) = call(&ctrl, helpers, seats, |team| {
            let main = thread::current().id();
            let done_elsewhere = AtomicUsize::new(0);
            // Chunk 0 (the caller claims it first) waits until another thread has run a chunk.
            team.run(8, &|k| {
                if thread::current().id() != main {
                    who.lock().unwrap().push(thread::current().id());
                    done_elsewhere.fetch_add(1, Ordering::Relaxed);
                }
                if k == 0 {
                    let t0 = Instant::now();
                    while done_elsewhere.load(Ordering::Relaxed) == 0 && t0.elapsed() < Duration::from_secs(20) {
                        thread::yield_now();
                    }
                }
            });
            assert!(done_elsewhere.load(Ordering::Relaxed) > 0, "no helper took part");
        });
        let mut ids = who.into_inner().unwrap();
        ids.sort_by_key(|id| format!("{id:?}"));
        ids.dedup();
        assert!(ids.len() <= seats as usize, "{} helpers ran chunks with {seats} seats", ids.len());
        assert_eq!(ran.iter().filter(|&&r| r > 0).count(), ids.len());
    }
}

#[test]
fn a_failed_helper_ends_the_wait() {
    let ctrl = Control::new();
    let ticket = TICKET.fetch_add(1, Ordering::Relaxed) + 1;
    thread::scope(|s| {
        let helper = s.spawn(|| {
            // A helper whose chunk fails (a panic here; a trap in a worker), as its worker then
            // reports it: the chunk is never done.
            let r = std::panic::catch_unwind(|| unsafe { parallel::work(&ctrl, ticket, 50_000_000) });
            assert!(r.is_err());
            parallel::abandon(&ctrl);
        });
        let mut team = Team::open(&ctrl, ticket, 1);
        let main = thread::current().id();
        team.run(4, &|k| {
            if thread::current().id() != main {
                panic!("chunk {k} fails");
            }
            if k == 0 {
                // Let the helper claim a chunk.
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_millis(200) {
                    thread::yield_now();
                }
            }
        });
        helper.join().unwrap();
        assert!(team.failed(), "the caller must see the helper fail");
    });
}

#[test]
fn a_panicking_helper_fails_the_call_instead_of_hanging_it() {
    // A chunk that panics on a helper is never done: the caller must learn it from the broken
    // flag (here set by the harness, in the threads module by the worker that caught the trap).
    let ctrl = Control::new();
    let t0 = Instant::now();
    let helper_in = AtomicBool::new(false);
    let ((), _, ending) = call_within(&ctrl, 1, 1, DEADLINE, |team| {
        let main = thread::current().id();
        team.run(8, &|k| {
            if thread::current().id() != main {
                helper_in.store(true, Ordering::Release);
                panic!("chunk {k} fails on a helper");
            }
            // The caller's first chunk waits until the helper has claimed one.
            let t0 = Instant::now();
            while !helper_in.load(Ordering::Acquire) && t0.elapsed() < Duration::from_secs(20) {
                thread::yield_now();
            }
        });
    });
    assert!(ending.failed && !ending.timed_out, "{ending:?}");
    assert!(t0.elapsed() < Duration::from_secs(10), "the caller waited {:?}", t0.elapsed());
}

#[test]
fn a_call_that_would_hang_times_out() {
    // A helper that never finishes its chunk (until released): the watchdog ends the call, so a
    // hang fails the test in seconds.
    let ctrl = Control::new();
    let release = AtomicBool::new(false);
    let left = AtomicBool::new(false);
    let helper_in = AtomicBool::new(false);
    let ((), _, ending) = call_within(&ctrl, 1, 1, Duration::from_millis(500), |team| {
        let main = thread::current().id();
        let job = |_k: usize| {
            if thread::current().id() != main {
                helper_in.store(true, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                left.store(true, Ordering::Release);
            } else {
                // The caller's first chunk waits until the helper has claimed one.
                let t0 = Instant::now();
                while !helper_in.load(Ordering::Acquire) && t0.elapsed() < Duration::from_secs(20) {
                    thread::yield_now();
                }
            }
        };
        team.run(4, &job);
        assert!(team.failed(), "the watchdog must end the wait");
        // The job lives in this frame: let the helper leave it first.
        release.store(true, Ordering::Release);
        while !left.load(Ordering::Acquire) {
            thread::yield_now();
        }
    });
    assert!(ending.timed_out, "{ending:?}");
}

#[test]
fn a_panicking_caller_waits_for_the_helpers_chunks() {
    // The job lives in the caller's frame: a panic in the caller's chunk must not leave it while
    // a helper still runs a chunk.
    let ctrl = Control::new();
    let helper_done = AtomicBool::new(false);
    let started = AtomicBool::new(false);
    let seen = AtomicBool::new(false);
    let ((), _) = call(&ctrl, 1, 1, |team| {
        let main = thread::current().id();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            team.run(2, &|_k| {
                if thread::current().id() != main {
                    started.store(true, Ordering::Release);
                    thread::sleep(Duration::from_millis(200));
                    helper_done.store(true, Ordering::Release);
                } else {
                    let t0 = Instant::now();
                    while !started.load(Ordering::Acquire) && t0.elapsed() < Duration::from_secs(20) {
                        thread::yield_now();
                    }
                    panic!("the caller's chunk fails");
                }
            })
        }));
        assert!(r.is_err());
        seen.store(helper_done.load(Ordering::Acquire), Ordering::Release);
    });
    assert!(seen.load(Ordering::Acquire), "the caller left run() while a helper ran its job");
}

/// Every array a call writes (bits), and its outcome (the sums' bits, or the failure).
type Outputs = (Vec<Vec<u32>>, Result<(u64, u64), Error>);

/// Every array a call writes, and its outcome, bit for bit.
fn outputs(f: &Fixture, r: &Result<Totals, Error>) -> Outputs {
    let mut v = f.state();
    for a in [&f.z, &f.d, &f.delta, &f.unit_entropy, &f.unit_loss, &f.dw, &f.db] {
        v.push(bits(a));
    }
    v.extend(f.adapt_out.iter().map(|a| bits(a)));
    (v, r.map(|t| (t.loss.to_bits(), t.entropy.to_bits())))
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Forward,
    Objective,
    Gradients,
    Step,
}

fn one_thread(f: &mut Fixture, which: Which) -> Result<Totals, Error> {
    match which {
        Which::Forward => f.forward().map(|()| Totals::default()),
        Which::Objective => f.objective(),
        Which::Gradients => f.gradients(),
        Which::Step => f.step(),
    }
}

fn split_call(f: &mut Fixture, which: Which, helpers: usize) -> Result<Totals, Error> {
    let ctrl = Control::new();
    let (r, _) = call(&ctrl, helpers, helpers as u32, |team| {
        f.run(|input, layer, work, opt| match which {
            Which::Forward => split::forward_pass(team, input, layer, work).map(|()| Totals::default()),
            Which::Objective => split::objective_pass(team, input, layer, work),
            Which::Gradients => split::gradients_pass(team, input, layer, work),
            Which::Step => split::step(team, input, layer, work, opt),
        })
    });
    if matches!(which, Which::Step) && r.is_ok() {
        f.rules = common::advance(f.rules);
    }
    r
}

/// The fixtures: shapes from tiny to several chunks per phase, each loss, semi-supervised rows,
/// adaptation, every rule kind, clipping.
fn fixtures() -> Vec<Fixture> {
    let shapes = [
        Shape::new(1, 1, 1),
        Shape::new(3, 5, 7),
        Shape::new(32, 64, 16),
        Shape::new(130, 33, 9),
        Shape::new(64, 257, 70),
        Shape::new(9, 1000, 3),
        Shape::new(256, 40, 10),
        // More blocks of rows (8 rows for 8192 inputs) than a phase has chunks.
        Shape::new(8 * split::MAX_CHUNKS + 24, 8192, 1),
    ];
    let mut out = Vec::new();
    for (k, &shape) in shapes.iter().enumerate() {
        let mut f = Fixture::new(shape, 100 + k as u64);
        f.coefficients.cross_entropy = [0.0, 0.3, 1.0][k % 3];
        f.coefficients.entropy = [1.0, 0.7, 0.0][k % 3];
        f.rules = match k % 4 {
            0 => [Rule::sgd(0.1); 3],
            1 => [Rule::adam(0.01); 3],
            2 => [
                Rule { momentum: 0.9, nesterov: true, weight_decay: 0.01, ..Rule::sgd(0.05) },
                Rule::FROZEN,
                Rule { momentum: 0.5, ..Rule::sgd(0.2) },
            ],
            _ => [Rule::FROZEN, Rule { weight_decay: 0.1, ..Rule::adam(0.001) }, Rule::sgd(0.1)],
        };
        f.max_grad_norm = if k % 2 == 1 { 0.05 } else { 0.0 };
        if k == 4 || k == 6 {
            // Semi-supervised rows: the first third labelled (within a chunk, and across chunks).
            f.labelled = Some(shape.batch / 3);
            f.coefficients.cross_entropy = 1.0;
            f.coefficients.entropy = 0.5;
        }
        if k % 3 == 2 {
            f.adapt = Some(Adapt {
                filter: true,
                eata: true,
                mean: true,
                max_entropy: 0.4 * shape.outputs as f32,
                diversity: 0.3,
                marginal_momentum: 0.9,
            });
        }
        out.push(f);
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn split_drivers_give_the_one_thread_drivers_bits() {
    for base in fixtures() {
        for which in [Which::Forward, Which::Objective, Which::Gradients, Which::Step] {
            let (mut a, mut b) = (base.clone(), base.clone());
            for round in 0..3 {
                let ra = one_thread(&mut a, which);
                let rb = split_call(&mut b, which, 1);
                let (oa, ta) = outputs(&a, &ra);
                let (ob, tb) = outputs(&b, &rb);
                let what = format!("{:?} {which:?} round {round}", base.shape);
                // Only the f64 sums may differ (to rounding): every array is bitwise the same.
                assert_eq!(oa, ob, "{what}: arrays");
                match (ta, tb) {
                    (Ok((la, ea)), Ok((lb, eb))) => {
                        let f = f64::from_bits;
                        assert!(close(f(la), f(lb)) && close(f(ea), f(eb)), "{what}: totals {la} {lb}");
                    }
                    (ta, tb) => assert_eq!(ta, tb, "{what}: status"),
                }
                // Clipping: its coefficient comes from the f64 norm, which may round differently:
                // keep the two runs on the same parameters.
                b = a.clone();
            }
        }
    }
}

#[test]
fn any_number_of_helpers_gives_the_same_bits() {
    for base in fixtures() {
        let mut runs = Vec::new();
        for helpers in [0, 1, 3] {
            let mut f = base.clone();
            let mut results = Vec::new();
            for _ in 0..3 {
                let r = split_call(&mut f, Which::Step, helpers);
                results.push(outputs(&f, &r));
            }
            runs.push(results);
        }
        assert_eq!(runs[0], runs[1], "{:?}: 0 vs 1 helper", base.shape);
        assert_eq!(runs[0], runs[2], "{:?}: 0 vs 3 helpers", base.shape);
    }
}

#[test]
fn statuses_are_the_one_thread_drivers() {
    let shape = Shape::new(40, 30, 20);
    type Spoil = Box<dyn Fn(&mut Fixture)>;
    let cases: Vec<(&str, Spoil)> = vec![
        ("NaN in x", Box::new(|f| f.x[517] = f32::NAN)),
        ("infinite target", Box::new(|f| f.y[33] = f32::INFINITY)),
        ("target above 1", Box::new(|f| f.y[700] = 1.5)),
        ("overflowing update", Box::new(|f| f.rules = [Rule::sgd(3e38); 3])),
        ("huge weights", Box::new(|f| f.w.fill(3e38))),
    ];
    for (what, spoil) in cases {
        for which in [Which::Forward, Which::Objective, Which::Gradients, Which::Step] {
            let mut base = Fixture::new(shape, 7);
            spoil(&mut base);
            let (mut a, mut b) = (base.clone(), base.clone());
            let ra = one_thread(&mut a, which).map(|_| ());
            let rb = split_call(&mut b, which, 2).map(|_| ());
            assert_eq!(ra, rb, "{what}, {which:?}");
            if ra.is_err() {
                // A failed call changes no parameter and no optimizer state.
                assert_eq!(b.state(), base.state(), "{what}, {which:?}: state changed");
            }
        }
    }
}
