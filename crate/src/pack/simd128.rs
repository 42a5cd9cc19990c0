//! The SIMD128 flavour of the packings: the same layouts with `f32x4`, so the same floats.

use core::arch::wasm32::*;

use super::{check_inputs, check_weights, width, write_panel, write_strip, WIDE};
use crate::shape::Shape;
use crate::simd::{load, store};

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

/// As the scalar flavour: full panels a group of 4 rows at a time, four inputs per step (4 rows
/// of `w` and `g` loaded, added, transposed, stored as 4 panel half-rows); the last panel, if
/// narrow or padded, and the last `inputs % 4` columns element by element.
pub fn pack_weights(w: &[f32], g: &[f32], panels: &mut [f32], shape: Shape) {
    check_weights(w, g, panels, shape);
    let Shape { inputs, outputs, .. } = shape;
    let full = outputs / WIDE;
    let i4 = inputs & !3;
    for q in 0..2 * full {
        // Rows o0..o0+4 go to columns 4h..4h+4 of panel p.
        let (p, h, o0) = (q / 2, q % 2, q * 4);
        let panel = &mut panels[p * WIDE * inputs..][..WIDE * inputs];
        let wr: [&[f32]; 4] = core::array::from_fn(|c| &w[(o0 + c) * inputs..][..inputs]);
        let gr: [&[f32]; 4] = core::array::from_fn(|c| &g[(o0 + c) * inputs..][..inputs]);
        let pp = panel.as_mut_ptr();
        let mut i = 0;
        while i < i4 {
            // SAFETY: i + 4 ≤ inputs: every row read stays inside its row of `inputs` floats.
            let s: [v128; 4] = core::array::from_fn(|c| unsafe {
                f32x4_add(load(wr[c].as_ptr().add(i)), load(gr[c].as_ptr().add(i)))
            });
            let t = transpose(s[0], s[1], s[2], s[3]);
            for (j, v) in t.iter().enumerate() {
                // SAFETY: (i + j)·8 + 4h + 4 ≤ inputs·8 = panel.len(); borrowed mutably.
                unsafe { store(pp.add((i + j) * WIDE + 4 * h), *v) };
            }
            i += 4;
        }
        for i in i4..inputs {
            for c in 0..4 {
                panel[i * WIDE + 4 * h + c] = wr[c][i] + gr[c][i];
            }
        }
    }
    if full * WIDE < outputs {
        let o0 = full * WIDE;
        let wd = width(outputs, o0);
        write_panel(w, g, &mut panels[o0 * inputs..][..wd * inputs], shape, o0, wd);
    }
}

/// As the scalar flavour: full strips copied two vectors per row, the last one row by row.
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    check_inputs(x, strips, shape);
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
        let i0 = full * WIDE;
        let wd = width(inputs, i0);
        write_strip(x, &mut strips[i0 * batch..][..wd * batch], shape, i0, wd);
    }
}
