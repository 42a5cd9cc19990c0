//! Packing: the layouts the two GEMMs read, written into the caller's scratch (`pack` in the
//! args block) once per call.
//!
//! * **Panels** of `W + G`, transposed: the forward GEMM keeps `z[n][o..o+8]` in two `f32x4`
//!   accumulators and needs, for each input `i`, the weights of 8 consecutive outputs side by
//!   side. Panel `p` covers outputs `8p..8p+8` and holds `wsum[8p + c][i]` at `i·8 + c`. The
//!   last panel is 4 wide when at most 4 outputs remain, else 8; missing outputs are zeros.
//!   Forming `w + g` here replaces the separate `wsum = w + g` pass.
//! * **Strips** of `x`: the weight-gradient GEMM keeps `dw[o][i..i+8]` in two accumulators and
//!   walks the batch, needing `x[n][i..i+8]` for consecutive `n`. Strip `s` covers inputs
//!   `8s..8s+8` and holds `x[n][8s + j]` at `n·8 + j` (4 wide for a last strip of at most 4
//!   inputs; zeros pad). Reading `x` rows directly would stride by `inputs` floats, and a
//!   power-of-two stride puts every row of a tile into the same cache set (measured: a third of
//!   the gradient's speed at `inputs = 1024`); a strip is contiguous.
//!
//! Both layouts are the same in every flavour, so the flavours read the same numbers.
//!
//! Flavours: `scalar.rs` (portable), `simd128.rs`; `crate::kernels` picks one.

pub mod scalar;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

use crate::shape::Shape;

/// Outputs per full panel, inputs per full strip.
pub const WIDE: usize = 8;
/// Width of a last panel or strip that covers at most 4 outputs or inputs.
pub const NARROW: usize = 4;

/// The width of the block that starts at `start` of `len`: 8, or 4 for a last block of ≤ 4.
#[inline(always)]
pub const fn width(len: usize, start: usize) -> usize {
    if len - start <= NARROW {
        NARROW
    } else {
        WIDE
    }
}

/// The blocks (panels of outputs, strips of inputs) over a dimension of `len`, in packed
/// order: `(start, width)`. A block of `rows` rows starts at float `start · rows` of its packing
/// (every block before it is 8 wide). The one blocking loop of the packings and both GEMMs.
#[inline(always)]
pub fn blocks(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut start = 0;
    core::iter::from_fn(move || {
        let block = (start < len).then(|| (start, width(len, start)));
        if let Some((_, wd)) = block {
            start += wd;
        }
        block
    })
}

/// Floats of all blocks over a dimension of `len`, each `width × rows`.
const fn blocks_len(len: usize, rows: usize) -> Option<usize> {
    let full = len / WIDE;
    let rest = len % WIDE;
    let tail = if rest == 0 {
        0
    } else if rest <= NARROW {
        NARROW
    } else {
        WIDE
    };
    (full * WIDE + tail).checked_mul(rows)
}

/// Floats of the panels (`W + G`, transposed) for `shape`; `None` on overflow.
pub const fn panels_len(shape: Shape) -> Option<usize> {
    blocks_len(shape.outputs, shape.inputs)
}

/// Floats of the strips of `x` for `shape`; `None` on overflow.
pub const fn strips_len(shape: Shape) -> Option<usize> {
    blocks_len(shape.inputs, shape.batch)
}

/// Floats of packing scratch every call needs: panels, then strips (`pack_floats` export).
pub const fn pack_len(shape: Shape) -> Option<usize> {
    match (panels_len(shape), strips_len(shape)) {
        (Some(p), Some(s)) => p.checked_add(s),
        _ => None,
    }
}

/// `pack_weights`' contract: `w`, `g` are `outputs × inputs`; `panels` has at least
/// `panels_len(shape)` floats.
pub fn check_weights(w: &[f32], g: &[f32], panels: &[f32], shape: Shape) {
    assert!(w.len() == shape.w_len() && g.len() == shape.w_len());
    assert!(panels_len(shape).is_some_and(|n| panels.len() >= n));
}

/// `pack_inputs`' contract: `x` is `batch × inputs`; `strips` has at least `strips_len(shape)`.
pub fn check_inputs(x: &[f32], strips: &[f32], shape: Shape) {
    assert!(x.len() == shape.x_len());
    assert!(strips_len(shape).is_some_and(|n| strips.len() >= n));
}

/// One panel, `wd` outputs from `o0` (zeros past the last output), element by element: every
/// panel in the scalar flavour, the last one in the SIMD flavour.
#[inline(always)]
pub fn write_panel(w: &[f32], g: &[f32], panel: &mut [f32], shape: Shape, o0: usize, wd: usize) {
    let Shape { inputs, outputs, .. } = shape;
    for c in 0..wd {
        let o = o0 + c;
        if o < outputs {
            let (wr, gr) = (&w[o * inputs..][..inputs], &g[o * inputs..][..inputs]);
            for i in 0..inputs {
                panel[i * wd + c] = wr[i] + gr[i];
            }
        } else {
            for i in 0..inputs {
                panel[i * wd + c] = 0.0;
            }
        }
    }
}

/// One strip, `wd` inputs from `i0` (zeros past the last input), row by row: every strip in the
/// scalar flavour, the last one in the SIMD flavour.
#[inline(always)]
pub fn write_strip(x: &[f32], strip: &mut [f32], shape: Shape, i0: usize, wd: usize) {
    let Shape { batch, inputs, .. } = shape;
    let valid = wd.min(inputs - i0);
    for n in 0..batch {
        let row = &mut strip[n * wd..][..wd];
        row[..valid].copy_from_slice(&x[n * inputs + i0..][..valid]);
        row[valid..].fill(0.0);
    }
}
