// Re-estimating a model's input statistics on unlabelled data (no gradient): the covariate-shift
// baseline of Schneider et al. (NeurIPS 2020), the statistics half of TENT. Per input, the mean
// and standard deviation of the test stream replace the training ones the model standardises
// with, so a shift of the inputs' location or scale is undone before the layer.
//
// Balanced: a test stream whose classes are not in their training proportions (label shift)
// moves the input statistics too, and undoing that would hurt. Each sample then counts with the
// weight wₙ = Σₒ P̃[n,o]·πₒ/q̂ₒ, where P̃[n,·] = D[n,·]/Σₒ D[n,o] are the model's predictions
// (under the statistics so far) normalised over the outputs, q̂ₒ their running mean over the
// stream and πₒ the training label frequency: the weighted sample has the training class mix.
// The ratio πₒ/q̂ₒ is capped at RATIO_CAP.

/** How the statistics follow the stream. */
export type StatsMode = "accumulate" | "ema" | "batch";

/** The largest πₒ/q̂ₒ a balanced weight uses: a class the stream hardly shows does not let a
 * few samples dominate the statistics. */
export const RATIO_CAP = 10;

export class StatsEstimator {
  readonly #inputs: number;
  readonly #outputs: number;
  readonly #mode: StatsMode;
  readonly #momentum: number;
  readonly #prior: Float64Array | null;
  readonly #minStd: number;
  // accumulate: weighted sums since the start; ema and batch: the current estimate.
  #count = 0;
  readonly #sum: Float64Array;
  readonly #sumSq: Float64Array;
  readonly #mean: Float64Array;
  readonly #variance: Float64Array;
  // The running mean prediction q̂ (balanced only) and its sample count.
  #seen = 0;
  readonly #predicted: Float64Array;
  #weights: Float64Array;

  /** `prior` non-null: balanced. `minStd`: the model's floor. */
  constructor(
    inputs: number,
    outputs: number,
    mode: StatsMode,
    momentum: number,
    prior: Float32Array | null,
    minStd: number,
  ) {
    this.#inputs = inputs;
    this.#outputs = outputs;
    this.#mode = mode;
    this.#momentum = momentum;
    this.#prior = prior === null ? null : Float64Array.from(prior);
    this.#minStd = minStd;
    this.#sum = new Float64Array(inputs);
    this.#sumSq = new Float64Array(inputs);
    this.#mean = new Float64Array(inputs);
    this.#variance = new Float64Array(inputs);
    this.#predicted = new Float64Array(outputs);
    this.#weights = new Float64Array(0);
  }

  get balanced(): boolean {
    return this.#prior !== null;
  }

  /** The state, to put back with restore() when the step a fold belonged to fails. */
  snapshot(): unknown {
    return [
      this.#count,
      this.#seen,
      ...[this.#sum, this.#sumSq, this.#mean, this.#variance, this.#predicted].map((a) => a.slice()),
    ];
  }

  restore(state: unknown): void {
    const [count, seen, ...arrays] = state as [number, number, ...Float64Array[]];
    this.#count = count;
    this.#seen = seen;
    for (const [k, a] of [this.#sum, this.#sumSq, this.#mean, this.#variance, this.#predicted].entries())
      a.set(arrays[k]);
  }

  /** Forgets the stream. */
  reset(): void {
    this.#count = 0;
    this.#seen = 0;
    this.#sum.fill(0);
    this.#sumSq.fill(0);
    this.#predicted.fill(0);
  }

  /** Each sample's weight: 1, or the balanced weight from the predictions `d` (batch × outputs). */
  #sampleWeights(batch: number, d: Float32Array | null): Float64Array {
    const w = this.#weights.length >= batch ? this.#weights : new Float64Array(batch);
    this.#weights = w;
    const prior = this.#prior;
    if (prior === null || d === null) {
      w.fill(1, 0, batch);
      return w;
    }
    const O = this.#outputs;
    // P̃ rows, their batch mean into q̂ (the same rule as the statistics), then the weights.
    const q = this.#predicted;
    const batchMean = new Float64Array(O);
    for (let n = 0; n < batch; n++) {
      let s = 0;
      for (let o = 0; o < O; o++) s += d[n * O + o];
      for (let o = 0; o < O; o++) batchMean[o] += s > 0 ? d[n * O + o] / s / batch : 1 / O / batch;
    }
    if (this.#mode === "accumulate") {
      for (let o = 0; o < O; o++) q[o] = (q[o] * this.#seen + batchMean[o] * batch) / (this.#seen + batch);
    } else if (this.#mode === "ema" && this.#seen > 0) {
      const m = this.#momentum;
      for (let o = 0; o < O; o++) q[o] = m * q[o] + (1 - m) * batchMean[o];
    } else q.set(batchMean);
    this.#seen += batch;
    const ratio = new Float64Array(O);
    for (let o = 0; o < O; o++) ratio[o] = q[o] * RATIO_CAP > prior[o] ? prior[o] / q[o] : RATIO_CAP;
    for (let n = 0; n < batch; n++) {
      let s = 0,
        v = 0;
      for (let o = 0; o < O; o++) s += d[n * O + o];
      for (let o = 0; o < O; o++) v += (s > 0 ? d[n * O + o] / s : 1 / O) * ratio[o];
      w[n] = v;
    }
    return w;
  }

  /**
   * Folds a batch (batch × inputs) into the statistics; `d` are the model's predictions for it
   * under the statistics so far (needed when balanced, else ignored). Writes the new per-input
   * mean and standard deviation (floored at minStd) into `mean` and `std`.
   */
  fold(x: Float32Array, d: Float32Array | null, mean: Float32Array, std: Float32Array): void {
    const I = this.#inputs,
      batch = x.length / I;
    const w = this.#sampleWeights(batch, d);
    let total = 0;
    for (let n = 0; n < batch; n++) total += w[n];
    if (!(total > 0)) {
      // Every sample predicted only outputs of prior 0: no class mix to restore; count them all.
      w.fill(1, 0, batch);
      total = batch;
    }
    const mu = this.#mean,
      va = this.#variance;
    if (this.#mode === "accumulate") {
      const s1 = this.#sum,
        s2 = this.#sumSq;
      for (let n = 0; n < batch; n++) {
        const wn = w[n];
        for (let i = 0; i < I; i++) {
          const v = x[n * I + i];
          s1[i] += wn * v;
          s2[i] += wn * v * v;
        }
      }
      this.#count += total;
      for (let i = 0; i < I; i++) {
        mu[i] = s1[i] / this.#count;
        va[i] = Math.max(s2[i] / this.#count - mu[i] * mu[i], 0);
      }
    } else {
      // This batch's weighted mean and variance; "ema" mixes them into the running estimate.
      const bm = new Float64Array(I),
        bv = new Float64Array(I);
      for (let n = 0; n < batch; n++) for (let i = 0; i < I; i++) bm[i] += (w[n] / total) * x[n * I + i];
      for (let n = 0; n < batch; n++)
        for (let i = 0; i < I; i++) {
          const e = x[n * I + i] - bm[i];
          bv[i] += (w[n] / total) * e * e;
        }
      if (this.#mode === "ema" && this.#count > 0) {
        const m = this.#momentum;
        for (let i = 0; i < I; i++) {
          mu[i] = m * mu[i] + (1 - m) * bm[i];
          va[i] = m * va[i] + (1 - m) * bv[i];
        }
      } else {
        mu.set(bm);
        va.set(bv);
      }
      this.#count += total;
    }
    for (let i = 0; i < I; i++) {
      mean[i] = mu[i];
      std[i] = Math.max(Math.sqrt(va[i]), this.#minStd);
    }
  }
}
