//! The packings of `crate::pack` with `f32x4`: the same layouts, so the same floats.

use core::arch::wasm32::*;

use super::{load, store};
use crate::pack::{scalar, width, WIDE};
use crate::shape::Shape;

/// `[a b c d]` rows in, columns out: `r[j] = [a[j], b[j], c[j], d[j]]`.
#[inline(always)]
fn transpose(a: v128, b: v128, c: v128, d: v128) -> [v128; 4] {
    let ab_lo = i32x4_shuffle::<0, 4, 1, 5>(a, b);
    let ab_hi = i32x4_shuffle::<2, 6, 3, 7>(a, b);
    let cd_lo = i32x4_shuffle::<0, 4, 1, 5>(c, d);
    let cd_hi = i32x4_shuffle::<2, 6, 3, 7>(c, d);
    [
        i64x2_shuffle::<0, 2>(ab_lo, cd_lo),
        i64x2_shuffle::<1, 3>(ab_lo, cd_lo),
        i64x2_shuffle::<0, 2>(ab_hi, cd_hi),
        i64x2_shuffle::<1, 3>(ab_hi, cd_hi),
    ]
}

/// As `pack::scalar::pack_weights`: full panels four inputs at a time (8 rows of `w` and `g`
/// loaded, added, transposed as two 4×4 blocks); the last panel, if narrow or padded, and the
/// last `inputs % 4` columns the scalar way.
pub fn pack_weights(w: &[f32], g: &[f32], panels: &mut [f32], shape: Shape) {
    crate::pack::check_weights(w, g, panels, shape);
    let Shape { inputs, outputs, .. } = shape;
    let full = outputs / WIDE;
    let i4 = inputs & !3;
    for p in 0..full {
        let panel = &mut panels[p * WIDE * inputs..][..WIDE * inputs];
        let o0 = p * WIDE;
        // SAFETY: rows o0..o0+8 < outputs, each `inputs` floats of w and g (lengths checked).
        let wr: [*const f32; WIDE] = core::array::from_fn(|c| w[(o0 + c) * inputs..][..inputs].as_ptr());
        let gr: [*const f32; WIDE] = core::array::from_fn(|c| g[(o0 + c) * inputs..][..inputs].as_ptr());
        let pp = panel.as_mut_ptr();
        let mut i = 0;
        while i < i4 {
            // SAFETY: i + 4 ≤ inputs, so every row pointer reads 4 floats inside its row.
            let s: [v128; WIDE] = core::array::from_fn(|c| unsafe { f32x4_add(load(wr[c].add(i)), load(gr[c].add(i))) });
            let lo = transpose(s[0], s[1], s[2], s[3]);
            let hi = transpose(s[4], s[5], s[6], s[7]);
            for j in 0..4 {
                // SAFETY: (i + j)·8 + 8 ≤ inputs·8 = panel.len(); the panel is borrowed mutably.
                unsafe {
                    store(pp.add((i + j) * WIDE), lo[j]);
                    store(pp.add((i + j) * WIDE + 4), hi[j]);
                }
            }
            i += 4;
        }
        for i in i4..inputs {
            for c in 0..WIDE {
                panel[i * WIDE + c] = w[(o0 + c) * inputs + i] + g[(o0 + c) * inputs + i];
            }
        }
    }
    if full * WIDE < outputs {
        // The last panel: a sub-shape of the remaining rows, packed the scalar way.
        let o0 = full * WIDE;
        let rest = Shape { outputs: outputs - o0, ..shape };
        debug_assert!(width(outputs, o0) == width(rest.outputs, 0));
        scalar::pack_weights(&w[o0 * inputs..], &g[o0 * inputs..], &mut panels[o0 * inputs..], rest);
    }
}

/// As `pack::scalar::pack_inputs`: full strips copied two vectors per row.
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    crate::pack::check_inputs(x, strips, shape);
    let Shape { batch, inputs, .. } = shape;
    let full = inputs / WIDE;
    let (px, ps) = (x.as_ptr(), strips.as_mut_ptr());
    for s in 0..full {
        for n in 0..batch {
            // SAFETY: n < batch and 8s + 8 ≤ inputs: inside x; s·8·batch + n·8 + 8 ≤
            // full·8·batch ≤ strips.len(), which is borrowed mutably.
            unsafe {
                let from = px.add(n * inputs + s * WIDE);
                let to = ps.add((s * batch + n) * WIDE);
                store(to, load(from));
                store(to.add(4), load(from.add(4)));
            }
        }
    }
    if full * WIDE < inputs {
        // The last strip: copy the remaining columns the scalar way.
        let i0 = full * WIDE;
        let wd = width(inputs, i0);
        let valid = inputs - i0;
        let strip = &mut strips[i0 * batch..][..wd * batch];
        for n in 0..batch {
            let row = &mut strip[n * wd..][..wd];
            row[..valid].copy_from_slice(&x[n * inputs + i0..][..valid]);
            row[valid..].fill(0.0);
        }
    }
}
