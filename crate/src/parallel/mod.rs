//! Work split across threads that share one memory (the threads build; docs/threads.md).
//!
//! One thread, the caller, runs a call; helper threads (Web Workers, `worker_threads`), each
//! with its own instance of the same module on the same shared memory, take part in it. A call
//! is a sequence of *phases* (pack, forward, gradient, update); a phase is `n` chunks of work
//! that any participant may run, in any order, each writing its own part of the outputs. The
//! caller publishes a phase, claims chunks itself like any helper, and waits until every chunk
//! is done; between phases it alone runs what is sequential (sums, adaptation, clipping).
//!
//! * Claims: one 64-bit word holds the phase number (high half) and the next chunk (low half).
//!   A participant claims chunk `k` of phase `p` by a compare-exchange from `(p, k)` to
//!   `(p, k + 1)`, so a helper that was descheduled and wakes late can never claim a chunk of
//!   the wrong phase, and a busy core delays only the chunk its thread holds.
//! * Between phases the low half is `CLOSED`: the caller closes a phase before it writes the
//!   next one's description, so a claim either sees the phase it read or fails.
//! * What a chunk computes depends only on the call's shape and the chunk's index, never on the
//!   thread that runs it or on how many take part: results are bitwise the same run to run and
//!   for every number of threads (partial sums are combined in chunk order by the caller).
//! * A phase's job is a `&dyn Fn(usize)` on the caller's stack, which is in the shared memory;
//!   helpers' instances have the same function table, so they can call it.
//!
//! Only the caller allocates: helpers run kernels on slices and never touch the allocator.

pub mod split;

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// The low half of `Control::word` between phases.
const CLOSED: u32 = u32::MAX;

/// One shared memory's control block (TypeScript allocates it, zero-filled, once per memory;
/// `control_floats` floats). The caller of a call writes everything but `done` and `broken`.
#[repr(C, align(16))]
pub struct Control {
    /// `(phase << 32) | next chunk`, or `(phase << 32) | CLOSED` between phases.
    word: AtomicU64,
    /// Chunks of the open phase finished.
    done: AtomicU32,
    /// Chunks in the open phase.
    chunks: AtomicU32,
    /// The ticket of the open call; 0 when none is open.
    open: AtomicU32,
    /// The ticket of the last call closed.
    closed: AtomicU32,
    /// Helpers that may still join the open call (a model may use fewer threads than exist).
    seats: AtomicU32,
    /// Set by a helper that failed (a trap caught by its worker): the caller stops waiting.
    broken: AtomicU32,
    /// Chunks helpers ran in the open call, and the caller's spins waiting at the ends of its
    /// phases: what TypeScript reads to tell a helper that could not keep up (a busy core).
    helped: AtomicU32,
    stalls: AtomicU32,
    /// Address of the open phase's `&(dyn Fn(usize) + Sync)` (on the caller's stack). Last, so
    /// that the words before it lie where they do on wasm32 on any host too.
    job: AtomicUsize,
    _reserved: [u32; 5],
}

impl Control {
    /// A control block before any call (all zero, as TypeScript allocates one).
    pub const fn new() -> Control {
        Control {
            word: AtomicU64::new(0),
            done: AtomicU32::new(0),
            chunks: AtomicU32::new(0),
            open: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            seats: AtomicU32::new(0),
            broken: AtomicU32::new(0),
            helped: AtomicU32::new(0),
            stalls: AtomicU32::new(0),
            job: AtomicUsize::new(0),
            _reserved: [0; 5],
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new()
    }
}

/// Floats a control block takes.
pub const fn control_floats() -> usize {
    core::mem::size_of::<Control>() / 4
}

/// Indices of the u32 words TypeScript reads in a control block (ts/threads/arena.ts,
/// `ControlU32`): `broken`, `helped`, `stalls`.
pub const CONTROL_WORDS_READ: [usize; 3] = [
    core::mem::offset_of!(Control, broken) / 4,
    core::mem::offset_of!(Control, helped) / 4,
    core::mem::offset_of!(Control, stalls) / 4,
];

/// Whether ticket `a` comes at or after `b` (tickets wrap around).
fn at_or_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The job type: run chunk `k` of the open phase.
pub type Job<'a> = dyn Fn(usize) + Sync + 'a;

/// The caller's side of a call: publishes phases and takes part in them.
pub struct Team<'c> {
    ctrl: Option<&'c Control>,
    phase: u32,
    failed: bool,
}

impl<'c> Team<'c> {
    /// No helpers: every phase runs its chunks in order on this thread (the same results).
    pub const fn alone() -> Team<'static> {
        Team { ctrl: None, phase: 0, failed: false }
    }

    /// Opens call `ticket` on `ctrl` for at most `helpers` helpers. `ticket` is non-zero and
    /// differs from the last call's.
    pub fn open(ctrl: &'c Control, ticket: u32, helpers: u32) -> Team<'c> {
        let w = ctrl.word.load(Ordering::Relaxed);
        let phase = (w >> 32) as u32;
        ctrl.word.store(((phase as u64) << 32) | CLOSED as u64, Ordering::Relaxed);
        ctrl.helped.store(0, Ordering::Relaxed);
        ctrl.stalls.store(0, Ordering::Relaxed);
        ctrl.seats.store(helpers, Ordering::Relaxed);
        ctrl.open.store(ticket, Ordering::Release);
        Team { ctrl: Some(ctrl), phase, failed: false }
    }

    /// True when a helper failed during this call (its phases' outputs are incomplete).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Runs `job(k)` for every `k < chunks`, on this thread and on any helper that joins, and
    /// returns when all are done (or, if a helper failed, as soon as that is seen).
    pub fn run(&mut self, chunks: usize, job: &Job) {
        let Some(ctrl) = self.ctrl else {
            for k in 0..chunks {
                job(k);
            }
            return;
        };
        if self.failed || chunks == 0 {
            return;
        }
        let n = chunks as u32;
        // The job's address: helpers read it only after claiming a chunk of this phase, which
        // cannot be finished (and so this frame cannot be left) before they are done with it.
        let job_ref: &Job = job;
        let at = &job_ref as *const &Job as usize;
        ctrl.job.store(at, Ordering::Relaxed);
        ctrl.chunks.store(n, Ordering::Relaxed);
        ctrl.done.store(0, Ordering::Relaxed);
        self.phase = self.phase.wrapping_add(1);
        let base = (self.phase as u64) << 32;
        ctrl.word.store(base, Ordering::Release);
        // Closes the phase and waits for the chunks claimed in it when this frame is left, also
        // by a panic in one of this thread's chunks (host tests unwind): `job` lives in this
        // frame and helpers may be running it.
        let mut close = ClosePhase { ctrl, base, n, running: 0, failed: &mut self.failed };
        loop {
            let w = ctrl.word.load(Ordering::Acquire);
            let next = w as u32;
            if next >= n {
                break;
            }
            if ctrl.word.compare_exchange_weak(w, w + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                close.running = 1;
                job(next as usize);
                close.running = 0;
                ctrl.done.fetch_add(1, Ordering::Release);
            }
        }
    }
}

/// The end of a phase (`Team::run`): no more claims, then every claimed chunk done, or a helper
/// failed.
struct ClosePhase<'a> {
    ctrl: &'a Control,
    base: u64,
    n: u32,
    /// 1 while this thread runs a chunk: left by a panic, that chunk is never done.
    running: u32,
    failed: &'a mut bool,
}

impl Drop for ClosePhase<'_> {
    fn drop(&mut self) {
        let ctrl = self.ctrl;
        // Claims are compare-exchanges on the word: after this swap none succeeds, and the low
        // half it returns counts the chunks claimed (all `n` on the normal path).
        let claimed = (ctrl.word.swap(self.base | CLOSED as u64, Ordering::AcqRel) as u32).min(self.n);
        let mut spins = 0u32;
        while ctrl.done.load(Ordering::Acquire) + self.running < claimed {
            if ctrl.broken.load(Ordering::Acquire) != 0 {
                *self.failed = true;
                break;
            }
            spins = spins.wrapping_add(1);
            core::hint::spin_loop();
        }
        if spins > 0 {
            ctrl.stalls.fetch_add(spins, Ordering::Relaxed);
        }
    }
}

impl Drop for Team<'_> {
    /// Closes the call: helpers still inside it leave.
    fn drop(&mut self) {
        if let Some(ctrl) = self.ctrl {
            let ticket = ctrl.open.load(Ordering::Relaxed);
            ctrl.closed.store(ticket, Ordering::Release);
            ctrl.open.store(0, Ordering::Release);
        }
    }
}

/// A helper's side: takes part in call `ticket` on `ctrl` until it closes, or until `budget`
/// spins pass without work (a caller busy with a long sequential part, or a call that is not
/// coming: the helper's worker then waits outside). Returns the chunks it ran.
///
/// # Safety
/// `ctrl` is a control block of this memory that callers only use as this module does, and every
/// job published on it is alive while a chunk of its phase is unfinished (`Team::run` keeps it so).
pub unsafe fn work(ctrl: &Control, ticket: u32, budget: u32) -> u32 {
    // Wait for the call to open: TypeScript wakes helpers just before the caller enters it.
    let mut idle = 0u32;
    loop {
        let open = ctrl.open.load(Ordering::Acquire);
        if open == ticket {
            break;
        }
        if at_or_after(ctrl.closed.load(Ordering::Acquire), ticket) || idle >= budget {
            return 0;
        }
        idle += 1;
        core::hint::spin_loop();
    }
    // A seat: a model that uses fewer threads leaves the others out.
    let mut seats = ctrl.seats.load(Ordering::Relaxed);
    loop {
        if seats == 0 {
            return 0;
        }
        match ctrl.seats.compare_exchange_weak(seats, seats - 1, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => seats = now,
        }
    }
    let mut ran = 0u32;
    idle = 0;
    while ctrl.open.load(Ordering::Acquire) == ticket && idle < budget {
        let w = ctrl.word.load(Ordering::Acquire);
        let next = w as u32;
        // `chunks` and `job` belong to the phase in `w` while its low half is not CLOSED: the
        // caller closes a phase before describing the next (and the claim below fails then).
        if next != CLOSED && next < ctrl.chunks.load(Ordering::Acquire) {
            if ctrl.word.compare_exchange_weak(w, w + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                let at = ctrl.job.load(Ordering::Acquire) as *const &Job;
                // SAFETY: the claim succeeded, so the phase is open and its job alive until
                // `done` counts this chunk.
                let job = unsafe { *at };
                job(next as usize);
                ctrl.done.fetch_add(1, Ordering::Release);
                ctrl.helped.fetch_add(1, Ordering::Relaxed);
                ran += 1;
                idle = 0;
            }
            continue;
        }
        idle += 1;
        core::hint::spin_loop();
    }
    ran
}

/// Marks `ctrl` broken: a helper failed inside a call (its worker caught the trap), so the
/// caller must not wait for its chunk.
pub fn abandon(ctrl: &Control) {
    ctrl.broken.store(1, Ordering::Release);
}

/// `total` units in at most `max` chunks of at least `min` units, each a multiple of `step`
/// units (but the last): the chunk size. Depends only on its arguments (the shape), never on
/// the threads.
pub fn chunk_size(total: usize, min: usize, max: usize, step: usize) -> usize {
    let step = step.max(1);
    let size = total.div_ceil(max.max(1)).max(min).max(1);
    size.div_ceil(step) * step
}

/// The range of chunk `k` of `size` units over `total`.
pub fn chunk(k: usize, size: usize, total: usize) -> core::ops::Range<usize> {
    let start = (k * size).min(total);
    start..(start + size).min(total)
}
