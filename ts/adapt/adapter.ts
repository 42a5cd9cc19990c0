// Test-time adaptation around any optimizer: W stays as trained, G adapts on unlabelled data.
//
// TENT (Wang et al., ICLR 2021): minimise the prediction entropy at test time, updating few
// parameters. EATA (Niu et al., ICML 2022): skip samples above an entropy margin E0, weigh
// the rest by 1/exp(H − E0), anchor the adapted weights to the source ones. SAR (Niu et al.,
// ICLR 2023): reset the model when a moving average of the loss says it has collapsed. The
// diversity term −λ·H(mean prediction) is the information-maximisation one (SHOT, Liang et
// al., ICML 2020). Everything per step runs in the core (ts/kernels/adapt.ts, crate/src/adapt.rs);
// this class only keeps the moving average and does the resets.
//
//   const opt = new SGD(m, { lr: 0.05, groups: { w: { frozen: true }, b: { frozen: true },
//                                                g: { weightDecay: 1e-3 } } });   // the anchor
//   const tta = new Adapter(m, opt, { maxEntropy: 2, weighting: "eata", diversity: 1, resetBelow: 0.05 });
//   for (const x of stream) { const r = tta.step(x); ... r.positive, r.filtered, r.reset }

import { fail } from "../errors.js";
import { isModel, type Model, type StepResult } from "../model.js";
import { isOptimizer, type Optimizer } from "../optim/optimizer.js";
import {
  choiceOption,
  lossSpec,
  newLossSpec,
  numberOption,
  readOptions,
  type AdaptOptions,
  type LossOptions,
} from "../options.js";
import type { AdaptStepResult } from "./result.js";

/** What Adapter uses of an optimizer. It must be an optimizer of the Adapter's model (SGD, Adam,
 *  AdamW), as for fit(): an optimizer of another model would adapt one and reset the other. */
export interface AdaptableOptimizer {
  step(x: Float32Array, options?: LossOptions): StepResult;
  reset(): void;
}

export interface AdapterOptions extends AdaptOptions {
  /** "mean" (default): the mean over the kept samples; "sum". */
  reduction?: "mean" | "sum";
  /** Automatic reset (SAR): after a step whose moving average of the mean entropy (bits per
   * sample) falls below this, reset(). Default: never. */
  resetBelow?: number;
  /** The moving average: ema ← m·ema + (1 − m)·meanEntropy, starting at the first value.
   * Default 0.9 (SAR's). */
  emaMomentum?: number;
}

const KEYS = ["maxEntropy", "weighting", "diversity", "reduction", "resetBelow", "emaMomentum"] as const;

export class Adapter {
  readonly #model: Model;
  readonly #opt: Optimizer;
  readonly #options: LossOptions;
  readonly #resetBelow: number;
  readonly #momentum: number;
  /** b when the adapter was made: reset() restores it (a frozen b never moves anyway). */
  readonly #b: Float32Array;
  #ema = NaN;
  #steps = 0;
  #resets = 0;

  constructor(model: Model, optimizer: Optimizer, options: AdapterOptions = {}) {
    const o = readOptions(options, KEYS, "Adapter");
    if (!isModel(model)) fail("OPTION", "Adapter: the first argument must be a Model");
    if (!isOptimizer(optimizer) || optimizer.model !== model) {
      fail("OPTION", "Adapter: the second argument must be an optimizer of this model (SGD, Adam, AdamW)");
    }
    const adapt: AdaptOptions = {};
    if (o.maxEntropy !== undefined) adapt.maxEntropy = o.maxEntropy as number;
    if (o.weighting !== undefined) adapt.weighting = o.weighting as AdaptOptions["weighting"];
    if (o.diversity !== undefined) adapt.diversity = o.diversity as number;
    const reduction = choiceOption(o.reduction, "Adapter reduction", ["mean", "sum"] as const, "mean");
    this.#options = { reduction, objective: { entropy: 1 }, adapt };
    // Check the adapt options now rather than at the first step.
    lossSpec(this.#options, "Adapter", newLossSpec());
    this.#resetBelow = numberOption(o.resetBelow, "Adapter resetBelow", -Infinity, 0);
    this.#momentum = numberOption(o.emaMomentum, "Adapter emaMomentum", 0.9, 0, 1);
    this.#model = model;
    this.#opt = optimizer;
    this.#b = model.b.slice();
  }

  get model(): Model {
    return this.#model;
  }
  get optimizer(): Optimizer {
    return this.#opt;
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
    const r = this.#opt.step(x, this.#options) as AdaptStepResult;
    this.#steps++;
    const m = this.#momentum;
    this.#ema = Number.isNaN(this.#ema) ? r.meanEntropy : m * this.#ema + (1 - m) * r.meanEntropy;
    if (this.#ema < this.#resetBelow) {
      this.reset();
      r.reset = true;
    }
    return r;
  }

  /** Back to the source model: G := 0, b as when the adapter was made, the optimizer's state
   * cleared (momentum, Adam's moments) and the moving average forgotten. W is never touched. */
  reset(): void {
    const g = this.#model.g; // throws DISPOSED before anything changes
    this.#opt.reset();
    g.fill(0);
    this.#model.b.set(this.#b);
    this.#ema = NaN;
    this.#resets++;
  }
}
