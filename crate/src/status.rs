//! Why a call failed (the status codes of the exports), and the cheap checks that tell which.

crate::abi::codes! {
    /// A failed call: the non-zero status codes the exports return (0 is success).
    pub enum Error {
        /// A non-finite value in `x`.
        NonFiniteInput = 1,
        /// A non-finite value in `targets`.
        NonFiniteTarget = 2,
        /// A (finite) target outside [0, 1].
        TargetOutOfRange = 3,
        /// A non-finite result: loss, entropy, `z`, a gradient, or a value an update would write.
        /// Nothing was written but scratch.
        NonFiniteResult = 4,
        /// A malformed args block (a required pointer 0, misaligned or outside memory, a written
        /// region overlapping another, sizes that overflow, an unknown rule kind or flag, a
        /// missing buffer, an invalid `max_grad_norm`): nothing was computed or written. From
        /// TypeScript this is a bug, never a user's mistake.
        InvalidArgs = 5,
    }
}

/// True when every value is finite.
pub fn all_finite(v: &[f32]) -> bool {
    // `x * 0` is 0 for finite x and NaN otherwise. Eight independent sums (only whether one of
    // them is NaN matters, so their order does not) keep the loop from waiting on one add
    // chain, and vectorise.
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k] * 0.0;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for &x in rest {
        s += x * 0.0;
    }
    s == 0.0
}

/// Which input explains a non-finite or rejected result, in the precedence of the ABI:
/// non-finite `x` (1), non-finite target (2), target outside [0, 1] (3), otherwise 4.
/// Only called on the rare failing path: it scans `x` and `targets`, with plain loops (the fast
/// `all_finite` twice more would cost a kilobyte of module for a path no common call takes).
#[inline(never)]
pub fn classify(x: &[f32], targets: Option<&[f32]>) -> Error {
    if !x.iter().all(|v| v.is_finite()) {
        return Error::NonFiniteInput;
    }
    if let Some(y) = targets {
        if !y.iter().all(|v| v.is_finite()) {
            return Error::NonFiniteTarget;
        }
        if y.iter().any(|&t| !(0.0..=1.0).contains(&t)) {
            return Error::TargetOutOfRange;
        }
    }
    Error::NonFiniteResult
}
