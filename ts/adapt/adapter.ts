// Test-time adaptation around any optimizer: W stays as trained, G adapts on unlabelled data.
//
// TENT (Wang et al., ICLR 2021): minimise the prediction entropy at test time, updating few
// parameters, and re-estimate the normalisation statistics (here the model's input statistics,
// no gradient: Schneider et al., NeurIPS 2020), balanced by the prior against label shift.
// EATA (Niu et al., ICML 2022): skip samples above an entropy margin E0, weigh the rest by
// 1/exp(H − E0), anchor the adapted weights to the source ones. SAR (Niu et al., ICLR 2023):
// reset the model when a moving average of the loss says it has collapsed. The diversity term
// pulls a running marginal of the predictions towards the training class mix (SHOT's
// information maximisation, Liang et al., ICML 2020, with the prior in place of uniform).
// Everything per step but the statistics runs in the core (ts/kernels/adapt.ts,
// crate/src/adapt.rs); this class keeps the running marginal and the moving average,
// re-estimates the input statistics (stats.ts) and does the resets.
//
//   const opt = new SGD(m, { lr: 0.1, momentum: 0.9, groups: { w: { frozen: true }, b: { frozen: true } } });
//   const tta = new Adapter(m, opt, { inputStats: "ema", diversity: 30, marginalMomentum: 0.9 });
//   for (const x of stream) { const r = tta.step(x); ... r.marginal, r.positive, r.reset }

import { fail } from "../errors.js";
import { isModel, type InputStats, type Model, type StepResult } from "../model.js";
import { isOptimizer, type Optimizer } from "../optim/optimizer.js";
import {
  booleanOption,
  isFloat32Array,
  plainView,
  choiceOption,
  lossSpec,
  newLossSpec,
  numberOption,
  readOptions,
  type AdaptOptions,
  type LossOptions,
} from "../options.js";
import type { AdaptStepResult } from "./result.js";
import { StatsEstimator, type StatsMode } from "./stats.js";

/** What Adapter uses of an optimizer. It must be an optimizer of the Adapter's model (SGD, Adam,
 *  AdamW), as for fit(): an optimizer of another model would adapt one and reset the other. */
export interface AdaptableOptimizer {
  step(x: Float32Array, options?: LossOptions): StepResult;
  reset(): void;
}

/** A threshold in bits, or `{ relative: k }`: k times the model's source entropy (the median
 * per-sample entropy of its training data, model.sourceEntropy), so one setting fits models of
 * different sizes. */
export type EntropyThreshold = number | { relative: number };

/**
 * The diversity term (AdaptOptions.diversity, prior, marginalMomentum) runs on a running marginal
 * that the Adapter keeps across steps: it starts at the prior, each step mixes in its batch's
 * mean prediction with weight 1 − marginalMomentum (default 0.9), and reset() puts it back.
 */
export interface AdapterOptions extends Omit<AdaptOptions, "maxEntropy" | "marginal"> {
  /** EATA's E0 (see AdaptOptions.maxEntropy), in bits or relative to the source entropy. */
  maxEntropy?: EntropyThreshold;
  /** "mean" (default): the mean over the kept samples; "sum". */
  reduction?: "mean" | "sum";
  /** Automatic reset (SAR): after a step whose moving average of the mean entropy (bits per
   * sample) falls below this (bits, or relative to the source entropy), reset(). Default: never. */
  resetBelow?: EntropyThreshold;
  /** The moving average: ema ← m·ema + (1 − m)·meanEntropy, starting at the first value.
   * Default 0.9 (SAR's). */
  emaMomentum?: number;
  /**
   * Re-estimate the model's input statistics on the unlabelled stream before each step (no
   * gradient; the model must standardise its inputs, see Model.setInputStats): "accumulate"
   * (pooled over every batch since the adapter was made or reset), "ema" (a moving average of
   * each batch's mean and variance, inputStatsMomentum), "batch" (each batch alone), or "keep"
   * (default: the statistics stay as they are).
   */
  inputStats?: StatsMode | "keep";
  /** "ema" only: estimate ← m·estimate + (1 − m)·batch. Default 0.9. */
  inputStatsMomentum?: number;
  /** Weigh each sample so the stream's predicted class mix matches the model's prior (label
   * shift must not move the statistics). Default: true when the model has a prior. */
  balanceStats?: boolean;
}

const KEYS = [
  "maxEntropy",
  "weighting",
  "diversity",
  "prior",
  "marginalMomentum",
  "reduction",
  "resetBelow",
  "emaMomentum",
  "inputStats",
  "inputStatsMomentum",
  "balanceStats",
] as const;
const STATS_MODES = ["keep", "accumulate", "ema", "batch"] as const;

/** A threshold in bits from a number or { relative: k } (k × the model's source entropy). */
function threshold(v: unknown, name: string, model: Model, dflt: number): number {
  if (v === undefined || typeof v === "number") return numberOption(v, name, dflt, 0);
  const o = readOptions(v, ["relative"], name);
  const k = numberOption(o.relative, `${name}.relative`, NaN, 0);
  if (Number.isNaN(k)) fail("OPTION", `${name} must be a number of bits or { relative: k }`);
  const source = model.sourceEntropy;
  if (source === null)
    fail("OPTION", `${name}: { relative } needs the model's source entropy (fit() records it; or recordSource)`);
  return k * source;
}

export class Adapter {
  readonly #model: Model;
  readonly #opt: Optimizer | null;
  readonly #options: LossOptions;
  readonly #resetBelow: number;
  readonly #momentum: number;
  /** G and b when the adapter was made: reset() restores them. */
  readonly #g: Float32Array;
  readonly #b: Float32Array;
  /** The input statistics when the adapter was made (reset() restores them), and their estimator. */
  readonly #stats: InputStats | null;
  readonly #estimator: StatsEstimator | null;
  /** The diversity term's running marginal (null without the term) and where it starts. */
  readonly #marginal: Float32Array | null;
  readonly #marginalStart: Float32Array | null;
  #ema = NaN;
  #steps = 0;
  #resets = 0;

  /**
   * `optimizer` null: no gradient step, only the input statistics (inputStats) follow the
   * stream; each step then reports the metrics of the batch under the new statistics.
   */
  constructor(model: Model, optimizer: Optimizer | null, options: AdapterOptions = {}) {
    const o = readOptions(options, KEYS, "Adapter");
    if (!isModel(model)) fail("OPTION", "Adapter: the first argument must be a Model");
    if (optimizer !== null && (!isOptimizer(optimizer) || optimizer.model !== model)) {
      fail("OPTION", "Adapter: the second argument must be an optimizer of this model (SGD, Adam, AdamW), or null");
    }
    const adapt: AdaptOptions = {};
    if (o.maxEntropy !== undefined) adapt.maxEntropy = threshold(o.maxEntropy, "Adapter maxEntropy", model, 0);
    if (o.weighting !== undefined) adapt.weighting = o.weighting as AdaptOptions["weighting"];
    if (o.diversity !== undefined) adapt.diversity = o.diversity as number;
    if (o.prior !== undefined) adapt.prior = o.prior as number | Float32Array;
    adapt.marginalMomentum = o.marginalMomentum === undefined ? 0.9 : (o.marginalMomentum as number);
    const reduction = choiceOption(o.reduction, "Adapter reduction", ["mean", "sum"] as const, "mean");
    this.#options = { reduction, objective: { entropy: 1 }, adapt };
    // Check the adapt options now rather than at the first step.
    const spec = lossSpec(this.#options, "Adapter", newLossSpec());
    let marginal: Float32Array | null = null;
    if (spec.diversity !== 0) {
      const p = spec.prior ?? model.prior;
      if (p === null)
        fail(
          "OPTION",
          "Adapter: diversity needs a prior: the model's (fit() records it; setPrior) or the prior option",
        );
      if (typeof p !== "number" && p.length !== model.outputs)
        fail("SHAPE", `Adapter: prior has ${p.length} values, expected outputs = ${model.outputs}`);
      marginal = typeof p === "number" ? new Float32Array(model.outputs).fill(p) : Float32Array.from(p);
      adapt.prior = marginal.slice();
      adapt.marginal = marginal;
    }
    this.#resetBelow = o.resetBelow === undefined ? -Infinity : threshold(o.resetBelow, "Adapter resetBelow", model, 0);
    this.#momentum = numberOption(o.emaMomentum, "Adapter emaMomentum", 0.9, 0, 1);
    const mode = choiceOption(o.inputStats, "Adapter inputStats", STATS_MODES, "keep");
    const statsMomentum = numberOption(o.inputStatsMomentum, "Adapter inputStatsMomentum", 0.9, 0, 1);
    if (o.inputStatsMomentum !== undefined && mode !== "ema")
      fail("OPTION", 'Adapter: inputStatsMomentum is for inputStats: "ema"');
    const stats = model.inputStats;
    const prior = model.prior;
    const balance = booleanOption(o.balanceStats, "Adapter balanceStats", prior !== null);
    if (o.balanceStats !== undefined && mode === "keep") fail("OPTION", "Adapter: balanceStats needs inputStats");
    if (mode !== "keep" && stats === null)
      fail(
        "OPTION",
        "Adapter: inputStats needs a model that standardises its inputs (setInputStats, or fit with standardize)",
      );
    if (balance && mode !== "keep" && prior === null)
      fail("OPTION", "Adapter: balanceStats needs the model's prior (fit() records it from targets; or setPrior)");
    if (optimizer === null && mode === "keep")
      fail("OPTION", "Adapter: without an optimizer there is nothing to adapt but the input statistics (inputStats)");
    this.#model = model;
    this.#opt = optimizer;
    this.#g = model.g.slice();
    this.#b = model.b.slice();
    this.#stats = stats;
    this.#marginal = marginal;
    this.#marginalStart = marginal === null ? null : marginal.slice();
    this.#estimator =
      mode === "keep" || stats === null
        ? null
        : new StatsEstimator(model.inputs, model.outputs, mode, statsMomentum, balance ? prior : null, stats.minStd);
  }

  get model(): Model {
    return this.#model;
  }
  get optimizer(): Optimizer | null {
    return this.#opt;
  }
  /** The diversity term's running marginal p̄ (a copy; null without the term). */
  get marginal(): Float32Array | null {
    return this.#marginal === null ? null : this.#marginal.slice();
  }
  /** The moving average of the mean entropy (NaN before the first step and after a reset). */
  get ema(): number {
    return this.#ema;
  }
  /** Steps taken since construction. */
  get steps(): number {
    return this.#steps;
  }
  /** Resets so far, automatic or not. */
  get resets(): number {
    return this.#resets;
  }

  /** One adaptation step on an unlabelled batch; `reset` on the result says whether it ended
   * in an automatic reset. A step that throws changes nothing (model, optimizer, average). */
  step(x: Float32Array): AdaptStepResult {
    const model = this.#model;
    const estimator = this.#estimator;
    let before: { stats: InputStats; estimator: unknown } | null = null;
    if (estimator !== null) {
      if (!isFloat32Array(x)) fail("OPTION", "Adapter.step: x must be a Float32Array");
      // The predictions for the balanced weights first (this also checks x's shape and values).
      const d = estimator.balanced ? model.forward(x).d : null;
      if (d === null) model.entropy(x); // checks x before anything is folded in
      before = { stats: model.inputStats as InputStats, estimator: estimator.snapshot() };
      const mean = new Float32Array(model.inputs),
        std = new Float32Array(model.inputs);
      estimator.fold(plainView(x), d, mean, std); // its own length, whatever a subclass says
      model.setInputStats(mean, std, { minStd: before.stats.minStd });
    }
    let r: AdaptStepResult;
    try {
      r =
        this.#opt === null
          ? (model.gradients(x, this.#options as LossOptions & { reduction: "mean" | "sum" }).adapt as AdaptStepResult)
          : (this.#opt.step(x, this.#options) as AdaptStepResult);
    } catch (e) {
      if (before !== null && estimator !== null) {
        const s = before.stats;
        model.setInputStats(s.mean, s.std, { minStd: s.minStd });
        estimator.restore(before.estimator);
      }
      throw e;
    }
    // The running marginal moves on only after a step that succeeded.
    if (this.#marginal !== null && r.marginal !== null) this.#marginal.set(r.marginal);
    this.#steps++;
    const m = this.#momentum;
    this.#ema = Number.isNaN(this.#ema) ? r.meanEntropy : m * this.#ema + (1 - m) * r.meanEntropy;
    if (this.#ema < this.#resetBelow) {
      this.reset();
      r.reset = true;
    }
    return r;
  }

  /** Back to the model as it was when the adapter was made: G, b and the input statistics
   * restored, the optimizer's state cleared (momentum, Adam's moments), the moving averages and
   * the statistics of the stream forgotten. W is never touched. */
  reset(): void {
    const g = this.#model.g; // throws DISPOSED before anything changes
    this.#opt?.reset();
    g.set(this.#g);
    if (this.#marginal !== null && this.#marginalStart !== null) this.#marginal.set(this.#marginalStart);
    this.#model.b.set(this.#b);
    const s = this.#stats;
    if (s !== null && this.#estimator !== null) {
      this.#model.setInputStats(s.mean, s.std, { minStd: s.minStd });
      this.#estimator.reset();
    }
    this.#ema = NaN;
    this.#resets++;
  }
}
