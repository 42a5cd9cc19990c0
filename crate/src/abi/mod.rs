//! The records TypeScript and the core exchange through linear memory (docs/core-abi.md), each
//! declared once, here, as a `#[repr(C)]` struct.
//!
//! `record!` emits the struct and the list of its fields (name, byte offset, type, meaning),
//! and asserts at compile time that the struct has no padding: every byte is a named field, so a
//! record written field by field leaves no hole. `codes!` does the same for the numbers the
//! records carry (status codes, rule kinds, adapt flags). `render` turns these lists into
//! `ts/core/abi.ts` and the tables of docs/core-abi.md (`npm run gen:abi`; a test fails when
//! either is stale), so no offset or code is written by hand anywhere else.
//!
//! Who writes what: TypeScript writes `Args`, the three `RuleRecord`s and the `AdaptRecord`
//! (configuration) and never reads them back; the core reads them and writes only `Results`.

#[cfg(not(target_arch = "wasm32"))]
pub mod render;

/// A byte address in the module's linear memory; 0 means "absent" where a field allows it.
pub type Ptr = u32;

/// One field of a record, as `render` shows it.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    /// Byte offset inside the record.
    pub offset: usize,
    /// `u32`, `f32`, `f64` or `Ptr`.
    pub ty: &'static str,
    pub doc: &'static str,
}

/// Plain old data: every bit pattern is a valid value, so a copy out of memory is always sound.
///
/// # Safety
/// Only for types made of `u32`, `f32`, `f64` (and arrays or `#[repr(C)]` structs of them).
pub unsafe trait Plain: Copy {}

// SAFETY: an array of plain values is plain.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}

/// A record of the ABI: plain old data, no padding.
pub trait Record: Plain + Default {
    const NAME: &'static str;
    const DOC: &'static str;
    const FIELDS: &'static [Field];
}

/// One named number of a `codes!` list.
#[derive(Clone, Copy, Debug)]
pub struct Code {
    pub name: &'static str,
    pub value: u32,
    pub doc: &'static str,
}

macro_rules! record {
    ($(#[doc = $doc:literal])* pub struct $name:ident {
        $($(#[doc = $fdoc:literal])* pub $field:ident: $ty:ident,)*
    }) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $field: $ty,)*
        }
        // SAFETY: `record!` fields are u32, f32, f64 or Ptr (= u32): every bit pattern is valid.
        unsafe impl $crate::abi::Plain for $name {}
        impl $crate::abi::Record for $name {
            const NAME: &'static str = stringify!($name);
            const DOC: &'static str = concat!($($doc, "\n",)*);
            const FIELDS: &'static [$crate::abi::Field] = &[$($crate::abi::Field {
                name: stringify!($field),
                offset: core::mem::offset_of!($name, $field),
                ty: stringify!($ty),
                doc: concat!($($fdoc, "\n",)*),
            },)*];
        }
        const _: () = assert!(
            core::mem::size_of::<$name>() == 0 $(+ core::mem::size_of::<$ty>())*,
            concat!(stringify!($name), " has padding: order its fields by size or add a reserved one")
        );
    };
}

/// A `#[repr(u32)]` enum of ABI numbers with `ALL` (for `render`) and `from_code`.
macro_rules! codes {
    ($(#[doc = $doc:literal])* pub enum $name:ident {
        $($(#[doc = $vdoc:literal])* $variant:ident = $value:literal,)*
    }) => {
        $(#[doc = $doc])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[doc = $vdoc])* $variant = $value,)*
        }
        impl $name {
            pub const ALL: &'static [$crate::abi::Code] =
                &[$($crate::abi::Code { name: stringify!($variant), value: $value, doc: concat!($($vdoc, "\n",)*) },)*];
            /// The value with this code, if there is one.
            pub const fn from_code(code: u32) -> Option<$name> {
                match code {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }
            pub const fn code(self) -> u32 {
                self as u32
            }
        }
    };
}
pub(crate) use codes;

record! {
    /// The args block: one per model, written by TypeScript before each call and only read by
    /// the core. Pointers are byte addresses of `f32` arrays (4-byte aligned) whose length the
    /// meaning gives (`batch × outputs` and so on); a pointer to an array of 0 floats is not
    /// read and may be 0.
    pub struct Args {
        /// Rows of `x` in this call.
        pub batch: u32,
        /// Columns of `x`; columns of `w`, `g`.
        pub inputs: u32,
        /// Rows of `w`, `g`; length of `b`; columns of `z` and the other per-unit arrays.
        pub outputs: u32,
        /// `batch × inputs` inputs.
        pub x: Ptr,
        /// `batch × outputs` targets in [0, 1]: read (and checked) only by the objective when
        /// `cross_entropy_weight ≠ 0`, may be 0 otherwise.
        pub targets: Ptr,
        /// `outputs × inputs` weights.
        pub w: Ptr,
        /// `outputs × inputs` second weights: the layer uses `w + g`.
        pub g: Ptr,
        /// `outputs` biases.
        pub b: Ptr,
        /// `batch × outputs`, written: `z = x·(w+g)ᵀ + b`.
        pub z: Ptr,
        /// `batch × outputs`, written: `d = σ(z)`.
        pub d: Ptr,
        /// `batch × outputs`, written: `δ = ∂loss/∂z`. Required by gradients and step; the
        /// objective writes it when non-zero.
        pub delta: Ptr,
        /// `batch × outputs`, written when non-zero: each unit's entropy in bits.
        pub unit_entropy: Ptr,
        /// `batch × outputs`, written when non-zero: each unit's loss `αE·H + αC·CE` (not
        /// multiplied by `scale`).
        pub unit_loss: Ptr,
        /// `outputs × inputs`, written by gradients and step: `∂loss/∂w`, which is also `∂loss/∂g`.
        pub dw: Ptr,
        /// `outputs`, written by gradients and step: `∂loss/∂b`.
        pub db: Ptr,
        /// `αE`, the entropy's coefficient in the loss.
        pub entropy_weight: f32,
        /// `αC`, the cross-entropy's coefficient in the loss.
        pub cross_entropy_weight: f32,
        /// `1/batch` (the mean reduction) or 1 (sum, none).
        pub scale: f32,
        /// Packing scratch, written by every call: `pack_len` floats.
        pub pack: Ptr,
        /// Floats at `pack`: at least `pack_floats(batch, inputs, outputs)` (only that many are used).
        pub pack_len: u32,
        /// Step only: three `RuleRecord`s, for `w`, `g` and `b`, one after the other.
        pub rules: Ptr,
        /// Step only: clip the gradients to this global L2 norm first; 0 = off. Negative or not
        /// finite: status 5.
        pub max_grad_norm: f32,
        /// Gradients and step: an `AdaptRecord`, or 0 for no adaptation pass. Needs
        /// `unit_entropy` and `unit_loss`.
        pub adapt: Ptr,
        /// Objective, gradients and step: the `Results` record the call writes (8-byte aligned).
        pub results: Ptr,
        /// 1: semi-supervised rows. The first `labelled_rows` rows take the cross-entropy term
        /// alone (`targets` is then `labelled_rows × outputs`), the others the entropy term
        /// alone; `scale` stays the whole batch's. 0: every row takes both terms. Else status 5.
        pub semi_supervised: u32,
        /// With `semi_supervised`: how many rows, from the first, are labelled (at most `batch`,
        /// else status 5).
        pub labelled_rows: u32,
    }
}

record! {
    /// One parameter's update rule (`w`, `g` or `b`), written by TypeScript, read by step.
    /// Fields for one kind are ignored by the others.
    pub struct RuleRecord {
        /// A `RuleKind` code; anything else: status 5.
        pub kind: u32,
        /// The learning rate.
        pub lr: f32,
        /// SGD: L2 penalty added to the gradient. Adam: decoupled decay `θ·(1 − lr·λ)`.
        pub weight_decay: f32,
        /// SGD: momentum `μ`.
        pub momentum: f32,
        /// SGD: dampening `τ`.
        pub dampening: f32,
        /// SGD: 1 for Nesterov momentum, else 0.
        pub nesterov: u32,
        /// SGD: momentum buffer (as long as the parameter), required when momentum ≠ 0.
        pub buf: Ptr,
        /// SGD: 1 once the buffer holds a value (TypeScript sets it after the first update).
        pub buf_ready: u32,
        /// Adam: `1 − β₁`.
        pub one_minus_beta1: f32,
        /// Adam: `1 − β₂` (stored as the complement: `1 − 0.999` is not the difference of two
        /// nearby f32 values).
        pub one_minus_beta2: f32,
        /// Adam: `ε`.
        pub eps: f32,
        /// Adam: first moment `m`, as long as the parameter (required).
        pub exp_avg: Ptr,
        /// Adam: second moment `v`, as long as the parameter (required).
        pub exp_avg_sq: Ptr,
        /// Adam: updates this parameter has had (TypeScript advances it after each step).
        pub step: u32,
    }
}

record! {
    /// The test-time adaptation pass of gradients and step, written by TypeScript.
    pub struct AdaptRecord {
        /// `AdaptFlag` bits; any other bit: status 5.
        pub flags: u32,
        /// `E0` in bits (finite, else status 5).
        pub max_entropy: f32,
        /// `λ`, the diversity term's coefficient (finite, else status 5; 0: no diversity term).
        pub diversity: f32,
        /// `batch` floats, written: each sample's weight `wₙ` (0 for a skipped sample).
        pub sample_weights: Ptr,
        /// `outputs` floats, written: fraction of the batch with `d > 0.5`.
        pub positive: Ptr,
        /// `outputs` floats, written: this batch's mean prediction `(1/B)·Σₙ d[n,o]`.
        pub mean: Ptr,
        /// `outputs` floats, read when `diversity ≠ 0`: the prior `πₒ` in [0, 1] the running
        /// marginal is pulled towards.
        pub prior: Ptr,
        /// `outputs` floats, read when `diversity ≠ 0`: the running marginal before this batch.
        pub marginal: Ptr,
        /// `β` in [0, 1) (else status 5): the running marginal is `p̄ₒ = β·marginal + (1 −
        /// β)·mean`.
        pub marginal_momentum: f32,
        /// `outputs` floats, written when `diversity ≠ 0`: `p̄ₒ`.
        pub running: Ptr,
    }
}

record! {
    /// What objective, gradients and step write back: the only record the core writes. After a
    /// failure with status 1–4 the floats are NaN and `kept` 0; status 5 writes nothing.
    pub struct Results {
        /// `scale·Σ loss`, or the adaptation loss when an adaptation pass ran.
        pub loss: f64,
        /// `scale·Σ H` (bits) over the whole batch.
        pub entropy: f64,
        /// The adaptation pass's diversity term `λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ)` (0 when no pass ran).
        pub diversity_loss: f64,
        /// Samples the adaptation pass kept (0 when no pass ran).
        pub kept: u32,
        /// Always 0; keeps the record a multiple of 8 bytes.
        pub reserved: u32,
    }
}
