// What a step with `adapt` returns: the loss and entropy of every step, and the adaptation
// metrics. One object per step; the per-output arrays are views into the model's memory.

import type { StepResult } from "../model.js";

export class AdaptStepResult implements StepResult {
  /** The adaptation loss before the update (filtered, weighted, with the diversity term). */
  readonly loss: number;
  /** The entropy H in bits under the reduction, over the whole batch, before the update. */
  readonly entropy: number;
  /** Mean per-sample entropy in bits over the whole batch (Σₒ H[n,o], averaged over n). */
  readonly meanEntropy: number;
  /** Samples in the batch. */
  readonly batch: number;
  /** Samples that entered the loss (all of them without maxEntropy). */
  readonly kept: number;
  /** Fraction of the batch left out by the filter: (batch − kept)/batch. */
  readonly filtered: number;
  /** The diversity term's part of the loss, λ·Σₒ KL(πₒ ‖ p̄ₒ) under "mean" (0 without diversity). */
  readonly diversity: number;
  /** Per output, the fraction of the batch with D > 0.5: near 0 or 1 everywhere is collapse.
   * A view, valid until the next call on the model. */
  readonly positive: Float32Array;
  /** Per output, the batch's mean prediction. A view, valid until the next call. */
  readonly meanPrediction: Float32Array;
  /** With the diversity term: per output, the running marginal p̄ₒ = β·marginal + (1 − β)·
   * meanPrediction the term used (Adapter carries it to the next step); else null. A view,
   * valid until the next call. */
  readonly marginal: Float32Array | null;
  /** Set by Adapter.step when the step ended in an automatic reset. */
  reset = false;
  readonly #weights: Float32Array;

  constructor(
    loss: number,
    entropy: number,
    meanEntropy: number,
    batch: number,
    kept: number,
    diversity: number,
    positive: Float32Array,
    meanPrediction: Float32Array,
    weights: Float32Array,
    marginal: Float32Array | null = null,
  ) {
    this.loss = loss;
    this.entropy = entropy;
    this.meanEntropy = meanEntropy;
    this.batch = batch;
    this.kept = kept;
    this.filtered = (batch - kept) / batch;
    this.diversity = diversity;
    this.positive = positive;
    this.meanPrediction = meanPrediction;
    this.marginal = marginal;
    this.#weights = weights;
  }

  /** Each sample's weight in the loss (0: filtered out; 1 without EATA weighting): a new copy
   * each time it is read; read it before the next call on the model. */
  get weights(): Float32Array {
    return this.#weights.slice(0, this.batch);
  }
}
