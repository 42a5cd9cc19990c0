//! The portable flavour of the packings; always compiled, so tests run it on every target.

use super::{blocks, write_panel, write_strip};
use crate::shape::Shape;

/// `panels ← (w + g)ᵀ` in panels (contract: `super::check_weights`).
pub fn pack_weights(w: &[f32], g: &[f32], panels: &mut [f32], shape: Shape) {
    for (o0, wd) in blocks(shape.outputs) {
        write_panel(w, g, &mut panels[o0 * shape.inputs..][..wd * shape.inputs], shape, o0, wd);
    }
}

/// `strips ← x` in strips (contract: `super::check_inputs`).
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    for (i0, wd) in blocks(shape.inputs) {
        write_strip(x, &mut strips[i0 * shape.batch..][..wd * shape.batch], shape, i0, wd);
    }
}
