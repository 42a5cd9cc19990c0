//! The portable flavour of the packings; always compiled, so tests run it on every target.

use super::{width, write_panel, write_strip};
use crate::shape::Shape;

/// `panels ← (w + g)ᵀ` in panels (contract: `super::check_weights`).
pub fn pack_weights(w: &[f32], g: &[f32], panels: &mut [f32], shape: Shape) {
    let Shape { inputs, outputs, .. } = shape;
    let mut at = 0;
    let mut o0 = 0;
    while o0 < outputs {
        let wd = width(outputs, o0);
        write_panel(w, g, &mut panels[at..at + wd * inputs], shape, o0, wd);
        at += wd * inputs;
        o0 += wd;
    }
}

/// `strips ← x` in strips (contract: `super::check_inputs`).
pub fn pack_inputs(x: &[f32], strips: &mut [f32], shape: Shape) {
    let Shape { batch, inputs, .. } = shape;
    let mut at = 0;
    let mut i0 = 0;
    while i0 < inputs {
        let wd = width(inputs, i0);
        write_strip(x, &mut strips[at..at + wd * batch], shape, i0, wd);
        at += wd * batch;
        i0 += wd;
    }
}
