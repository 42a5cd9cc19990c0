// Generated from crate/src/abi (the records) and the codes in crate/src/{status,rule,adapt}.rs
// by `npm run gen:abi`: do not edit. crate/tests/generated.rs fails when this file is stale.
//
// A record's fields are indices into a typed array laid over the record: `<Record>U32` for
// u32 and pointer fields (a Uint32Array), `<Record>F32` for f32 (a Float32Array), `<Record>F64`
// for f64 (a Float64Array). <RECORD>_BYTES is a record's size, <RECORD>_ALIGN the alignment
// its address needs. docs/core-abi.md says who writes which record and when.

/**
 * The args block: one per model, written by TypeScript before each call and only read by the core.
 * Pointers are byte addresses of `f32` arrays (4-byte aligned) whose length the meaning gives
 * (`batch × outputs` and so on); a pointer to an array of 0 floats is not read and may be 0. (Args,
 * crate/src/abi/mod.rs)
 */
export const ARGS_BYTES = 104;
export const ARGS_ALIGN = 4;

/** Args: u32 and pointer fields: indices into a Uint32Array over the record. */
export enum ArgsU32 {
  /** Rows of `x` in this call. (u32 at byte 0) */
  batch = 0,
  /** Columns of `x`; columns of `w`, `g`. (u32 at byte 4) */
  inputs = 1,
  /**
   * Rows of `w`, `g`; length of `b`; columns of `z` and the other per-unit arrays. (u32 at byte 8)
   */
  outputs = 2,
  /** `batch × inputs` inputs. (pointer at byte 12) */
  x = 3,
  /**
   * `batch × outputs` targets in [0, 1]: read (and checked) only by the objective when
   * `cross_entropy_weight ≠ 0`, may be 0 otherwise. (pointer at byte 16)
   */
  targets = 4,
  /** `outputs × inputs` weights. (pointer at byte 20) */
  w = 5,
  /** `outputs × inputs` second weights: the layer uses `w + g`. (pointer at byte 24) */
  g = 6,
  /** `outputs` biases. (pointer at byte 28) */
  b = 7,
  /** `batch × outputs`, written: `z = x·(w+g)ᵀ + b`. (pointer at byte 32) */
  z = 8,
  /** `batch × outputs`, written: `d = σ(z)`. (pointer at byte 36) */
  d = 9,
  /**
   * `batch × outputs`, written: `δ = ∂loss/∂z`. Required by gradients and step; the objective
   * writes it when non-zero. (pointer at byte 40)
   */
  delta = 10,
  /** `batch × outputs`, written when non-zero: each unit's entropy in bits. (pointer at byte 44) */
  unitEntropy = 11,
  /**
   * `batch × outputs`, written when non-zero: each unit's loss `αE·H + αC·CE` (not multiplied by
   * `scale`). (pointer at byte 48)
   */
  unitLoss = 12,
  /**
   * `outputs × inputs`, written by gradients and step: `∂loss/∂w`, which is also `∂loss/∂g`.
   * (pointer at byte 52)
   */
  dw = 13,
  /** `outputs`, written by gradients and step: `∂loss/∂b`. (pointer at byte 56) */
  db = 14,
  /** Packing scratch, written by every call: `pack_len` floats. (pointer at byte 72) */
  pack = 18,
  /**
   * Floats at `pack`: at least `pack_floats(batch, inputs, outputs)` (only that many are used).
   * (u32 at byte 76)
   */
  packLen = 19,
  /**
   * Step only: three `RuleRecord`s, for `w`, `g` and `b`, one after the other. (pointer at byte 80)
   */
  rules = 20,
  /**
   * Gradients and step: an `AdaptRecord`, or 0 for no adaptation pass. Needs `unit_entropy` and
   * `unit_loss`. (pointer at byte 88)
   */
  adapt = 22,
  /**
   * Objective, gradients and step: the `Results` record the call writes (8-byte aligned). (pointer
   * at byte 92)
   */
  results = 23,
  /**
   * 1: semi-supervised rows. The first `labelled_rows` rows take the cross-entropy term alone
   * (`targets` is then `labelled_rows × outputs`), the others the entropy term alone; `scale` stays
   * the whole batch's. 0: every row takes both terms. Else status 5. (u32 at byte 96)
   */
  semiSupervised = 24,
  /**
   * With `semi_supervised`: how many rows, from the first, are labelled (at most `batch`, else
   * status 5). (u32 at byte 100)
   */
  labelledRows = 25,
}

/** Args: f32 fields: indices into a Float32Array over the record. */
export enum ArgsF32 {
  /** `αE`, the entropy's coefficient in the loss. (f32 at byte 60) */
  entropyWeight = 15,
  /** `αC`, the cross-entropy's coefficient in the loss. (f32 at byte 64) */
  crossEntropyWeight = 16,
  /** `1/batch` (the mean reduction) or 1 (sum, none). (f32 at byte 68) */
  scale = 17,
  /**
   * Step only: clip the gradients to this global L2 norm first; 0 = off. Negative or not finite:
   * status 5. (f32 at byte 84)
   */
  maxGradNorm = 21,
}

/**
 * One parameter's update rule (`w`, `g` or `b`), written by TypeScript, read by step. Fields for
 * one kind are ignored by the others. (RuleRecord, crate/src/abi/mod.rs)
 */
export const RULE_RECORD_BYTES = 56;
export const RULE_RECORD_ALIGN = 4;

/** RuleRecord: u32 and pointer fields: indices into a Uint32Array over the record. */
export enum RuleRecordU32 {
  /** A `RuleKind` code; anything else: status 5. (u32 at byte 0) */
  kind = 0,
  /** SGD: 1 for Nesterov momentum, else 0. (u32 at byte 20) */
  nesterov = 5,
  /**
   * SGD: momentum buffer (as long as the parameter), required when momentum ≠ 0. (pointer at byte
   * 24)
   */
  buf = 6,
  /**
   * SGD: 1 once the buffer holds a value (TypeScript sets it after the first update). (u32 at byte
   * 28)
   */
  bufReady = 7,
  /** Adam: first moment `m`, as long as the parameter (required). (pointer at byte 44) */
  expAvg = 11,
  /** Adam: second moment `v`, as long as the parameter (required). (pointer at byte 48) */
  expAvgSq = 12,
  /**
   * Adam: updates this parameter has had (TypeScript advances it after each step). (u32 at byte 52)
   */
  step = 13,
}

/** RuleRecord: f32 fields: indices into a Float32Array over the record. */
export enum RuleRecordF32 {
  /** The learning rate. (f32 at byte 4) */
  lr = 1,
  /**
   * SGD: L2 penalty added to the gradient. Adam: decoupled decay `θ·(1 − lr·λ)`. (f32 at byte 8)
   */
  weightDecay = 2,
  /** SGD: momentum `μ`. (f32 at byte 12) */
  momentum = 3,
  /** SGD: dampening `τ`. (f32 at byte 16) */
  dampening = 4,
  /** Adam: `1 − β₁`. (f32 at byte 32) */
  oneMinusBeta1 = 8,
  /**
   * Adam: `1 − β₂` (stored as the complement: `1 − 0.999` is not the difference of two nearby f32
   * values). (f32 at byte 36)
   */
  oneMinusBeta2 = 9,
  /** Adam: `ε`. (f32 at byte 40) */
  eps = 10,
}

/**
 * The test-time adaptation pass of gradients and step, written by TypeScript. (AdaptRecord,
 * crate/src/abi/mod.rs)
 */
export const ADAPT_RECORD_BYTES = 40;
export const ADAPT_RECORD_ALIGN = 4;

/** AdaptRecord: u32 and pointer fields: indices into a Uint32Array over the record. */
export enum AdaptRecordU32 {
  /** `AdaptFlag` bits; any other bit: status 5. (u32 at byte 0) */
  flags = 0,
  /**
   * `batch` floats, written: each sample's weight `wₙ` (0 for a skipped sample). (pointer at byte
   * 12)
   */
  sampleWeights = 3,
  /** `outputs` floats, written: fraction of the batch with `d > 0.5`. (pointer at byte 16) */
  positive = 4,
  /**
   * `outputs` floats, written: this batch's mean prediction `(1/B)·Σₙ d[n,o]`. (pointer at byte 20)
   */
  mean = 5,
  /**
   * `outputs` floats, read when `diversity ≠ 0`: the prior `πₒ` in [0, 1] the running marginal is
   * pulled towards. (pointer at byte 24)
   */
  prior = 6,
  /**
   * `outputs` floats, read when `diversity ≠ 0`: the running marginal before this batch. (pointer
   * at byte 28)
   */
  marginal = 7,
  /** `outputs` floats, written when `diversity ≠ 0`: `p̄ₒ`. (pointer at byte 36) */
  running = 9,
}

/** AdaptRecord: f32 fields: indices into a Float32Array over the record. */
export enum AdaptRecordF32 {
  /** `E0` in bits (finite, else status 5). (f32 at byte 4) */
  maxEntropy = 1,
  /**
   * `λ`, the diversity term's coefficient (finite, else status 5; 0: no diversity term). (f32 at
   * byte 8)
   */
  diversity = 2,
  /**
   * `β` in [0, 1) (else status 5): the running marginal is `p̄ₒ = β·marginal + (1 − β)·mean`. (f32
   * at byte 32)
   */
  marginalMomentum = 8,
}

/**
 * What objective, gradients and step write back: the only record the core writes. After a failure
 * with status 1–4 the floats are NaN and `kept` 0; status 5 writes nothing. (Results,
 * crate/src/abi/mod.rs)
 */
export const RESULTS_BYTES = 32;
export const RESULTS_ALIGN = 8;

/** Results: u32 and pointer fields: indices into a Uint32Array over the record. */
export enum ResultsU32 {
  /** Samples the adaptation pass kept (0 when no pass ran). (u32 at byte 24) */
  kept = 6,
  /** Always 0; keeps the record a multiple of 8 bytes. (u32 at byte 28) */
  reserved = 7,
}

/** Results: f64 fields: indices into a Float64Array over the record. */
export enum ResultsF64 {
  /** `scale·Σ loss`, or the adaptation loss when an adaptation pass ran. (f64 at byte 0) */
  loss = 0,
  /** `scale·Σ H` (bits) over the whole batch. (f64 at byte 8) */
  entropy = 1,
  /**
   * The adaptation pass's diversity term `λ·B·scale·Σₒ KL(πₒ ‖ p̄ₒ)` (0 when no pass ran). (f64 at
   * byte 16)
   */
  diversityLoss = 2,
}

/** What a call returns (crate/src/status.rs). */
export enum Status {
  /** Success: every output is written and finite. */
  Ok = 0,
  /** A non-finite value in `x`. */
  NonFiniteInput = 1,
  /** A non-finite value in `targets`. */
  NonFiniteTarget = 2,
  /** A (finite) target outside [0, 1]. */
  TargetOutOfRange = 3,
  /**
   * A non-finite result: loss, entropy, `z`, a gradient, or a value an update would write. Nothing
   * was written but scratch.
   */
  NonFiniteResult = 4,
  /**
   * A malformed args block (a required pointer 0, misaligned or outside memory, a written region
   * overlapping another, sizes that overflow, an unknown rule kind or flag, a missing buffer, an
   * invalid `max_grad_norm`): nothing was computed or written. From TypeScript this is a bug, never
   * a user's mistake.
   */
  InvalidArgs = 5,
}

/** `RuleRecord.kind` (crate/src/rule.rs). */
export enum RuleKind {
  /** Untouched, buffers too. */
  Frozen = 0,
  /** `torch.optim.SGD`: `crate::sgd`. */
  Sgd = 1,
  /** `torch.optim.AdamW` (Adam with decoupled weight decay): `crate::adam`. */
  Adam = 2,
}

/** Bits of `AdaptRecord.flags` (crate/src/adapt.rs). */
export enum AdaptFlag {
  /** Skip samples whose entropy exceeds `max_entropy` (EATA's filter). */
  Filter = 1,
  /** Weigh samples by `exp(max_entropy − Hₙ)` (EATA). */
  Eata = 2,
  /** Average over the kept samples (the mean reduction); otherwise add them up. */
  Mean = 4,
}
