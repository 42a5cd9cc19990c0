//! One parameter's update rule, as the kernels take it: `RuleRecord` (the ABI's raw form, in
//! `abi`) decoded, without its buffer pointers. `sgd` and `adam` apply it; `step` checks every
//! update before it writes. The rule is input only: the counters that change with training
//! (`buf_ready`, `step`) are advanced by the caller (TypeScript) after a successful step.

use crate::abi::RuleRecord;

crate::abi::codes! {
    /// What a rule does with its parameter.
    pub enum RuleKind {
        /// Untouched, buffers too.
        Frozen = 0,
        /// `torch.optim.SGD`: `crate::sgd`.
        Sgd = 1,
        /// `torch.optim.AdamW` (Adam with decoupled weight decay): `crate::adam`.
        Adam = 2,
    }
}

/// A rule record's values (docs/core-abi.md, `RuleRecord`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    pub kind: RuleKind,
    pub lr: f32,
    /// SGD: L2 penalty added to the gradient. Adam: decoupled decay `θ·(1 − lr·λ)`.
    pub weight_decay: f32,
    pub momentum: f32,
    pub dampening: f32,
    pub nesterov: bool,
    /// The momentum buffer holds a value (the caller sets it after the first update).
    pub buf_ready: bool,
    /// Adam's `1 − β₁` and `1 − β₂`, stored rather than β so that `1 − β₂ = 1e-3` is not the
    /// difference of two nearby `f32` values (PyTorch computes it in `f64`).
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    /// Adam's ε.
    pub eps: f32,
    /// Adam: updates this parameter has had; the bias corrections use `t = step + 1`.
    pub step: u32,
}

impl Default for Rule {
    fn default() -> Self {
        Rule::FROZEN
    }
}

impl Rule {
    pub const FROZEN: Rule = Rule {
        kind: RuleKind::Frozen,
        lr: 0.0,
        weight_decay: 0.0,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        buf_ready: false,
        one_minus_beta1: 0.1,
        one_minus_beta2: 0.001,
        eps: 1e-8,
        step: 0,
    };

    /// Plain SGD with learning rate `lr`.
    pub const fn sgd(lr: f32) -> Rule {
        Rule { kind: RuleKind::Sgd, lr, ..Rule::FROZEN }
    }

    /// Adam with learning rate `lr` and PyTorch's defaults (β = (0.9, 0.999), ε = 1e-8, λ = 0).
    pub const fn adam(lr: f32) -> Rule {
        Rule { kind: RuleKind::Adam, lr, ..Rule::FROZEN }
    }

    /// The rule reads and writes a momentum buffer.
    pub fn uses_buffer(&self) -> bool {
        self.kind == RuleKind::Sgd && self.momentum != 0.0
    }

    /// The record's values; `None` for an unknown kind.
    pub fn decode(r: &RuleRecord) -> Option<Rule> {
        Some(Rule {
            kind: RuleKind::from_code(r.kind)?,
            lr: r.lr,
            weight_decay: r.weight_decay,
            momentum: r.momentum,
            dampening: r.dampening,
            nesterov: r.nesterov != 0,
            buf_ready: r.buf_ready != 0,
            one_minus_beta1: r.one_minus_beta1,
            one_minus_beta2: r.one_minus_beta2,
            eps: r.eps,
            step: r.step,
        })
    }
}
