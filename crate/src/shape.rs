//! The layer's three dimensions.

/// `x` is `batch × inputs`, `w`/`g`/`wsum`/`dw` are `outputs × inputs`, `b`/`db` are `outputs`,
/// `z`/`d`/`delta`/`targets` are `batch × outputs`; all row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

impl Shape {
    pub const fn new(batch: usize, inputs: usize, outputs: usize) -> Self {
        Shape { batch, inputs, outputs }
    }
    /// Floats in `x`.
    pub const fn x_len(&self) -> usize {
        self.batch * self.inputs
    }
    /// Floats in `w`, `g`, `wsum`, `dw`.
    pub const fn w_len(&self) -> usize {
        self.outputs * self.inputs
    }
    /// Floats in `z`, `d`, `delta`, `targets`, `unit_entropy`, `unit_loss`.
    pub const fn z_len(&self) -> usize {
        self.batch * self.outputs
    }
}
