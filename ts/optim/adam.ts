// Adam (Kingma & Ba 2015) with decoupled weight decay (Loshchilov & Hutter 2019), as
// torch.optim.AdamW, fused into the core's step. `Adam` with `weightDecay` is therefore AdamW,
// not torch.optim.Adam's L2 penalty; `AdamW` is the same optimizer with torch.optim.AdamW's
// default weight decay of 0.01. Groups, state, clipping and lr live in ./optimizer.ts.

import { RuleKind } from "../core/abi.js";
import { FROZEN_RULE, type View } from "../core/types.js";
import { fail } from "../errors.js";
import type { Model } from "../model.js";
import { f32Option, numberOption, readArray } from "../options.js";
import {
  Optimizer,
  type BaseOptions,
  type GroupOptions,
  type OptimizerSpec,
  type OptimizerStateDict,
  type ParamName,
} from "./optimizer.js";

export interface AdamGroup extends GroupOptions {
  betas?: [number, number];
  eps?: number;
}

export interface AdamOptions extends BaseOptions {
  /** Learning rate (default 1e-3, as PyTorch). */
  lr?: number;
  /** Decay rates of the moment estimates (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to √v̂ (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay λ: θ ← θ·(1 − lr·λ) each step, as torch.optim.AdamW.
   * Default 0 for Adam, 0.01 for AdamW. */
  weightDecay?: number;
  groups?: Partial<Record<ParamName, AdamGroup>>;
}

export type AdamStateDict = OptimizerStateDict<
  "Adam",
  { step: number; expAvg: Float32Array | null; expAvgSq: Float32Array | null }
>;

interface Hyper {
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  eps: number;
}

function spec(name: string, weightDecay: number): OptimizerSpec<Hyper> {
  return {
    name,
    type: "Adam",
    keys: ["betas", "eps"],
    groupKeys: ["betas", "eps"],
    weightDecay,
    hyper(pick, where) {
      const betas = pick("betas");
      let b1 = 0.9,
        b2 = 0.999;
      if (betas !== undefined) {
        const pair = readArray(betas, `${where} betas`, 2);
        if (pair.length !== 2) fail("OPTION", `${where} betas must be [beta1, beta2]`);
        b1 = numberOption(pair[0], `${where} betas[0]`, 0.9, 0);
        b2 = numberOption(pair[1], `${where} betas[1]`, 0.999, 0);
        if (!(b1 < 1 && b2 < 1)) fail("OPTION", `${where} betas must lie in [0, 1), got [${b1}, ${b2}]`);
      }
      // 1 − β in float64, as PyTorch computes it: the record stores the complement.
      return { oneMinusBeta1: 1 - b1, oneMinusBeta2: 1 - b2, eps: f32Option(pick("eps"), `${where} eps`, 1e-8, 0) };
    },
    buffers: ["expAvg", "expAvgSq"],
    nonNegative: ["expAvgSq"],
    needs: () => true,
    counted: true,
    rule: (h, lr, wd, bufs: Record<string, View> | null) => ({
      ...FROZEN_RULE,
      kind: RuleKind.Adam,
      lr,
      weightDecay: wd,
      oneMinusBeta1: h.oneMinusBeta1,
      oneMinusBeta2: h.oneMinusBeta2,
      eps: h.eps,
      expAvg: bufs === null ? null : bufs.expAvg,
      expAvgSq: bufs === null ? null : bufs.expAvgSq,
    }),
  };
}

const ADAM = spec("Adam", 0);
const ADAMW = spec("AdamW", 0.01);

/**
 * Adam with decoupled weight decay (torch.optim.AdamW semantics): with weightDecay λ each step
 * first shrinks θ by (1 − lr·λ), then takes the Adam step. Bias corrections use each
 * parameter's own step count; a frozen parameter has no state and no count (as in PyTorch,
 * where a parameter without a gradient is skipped).
 */
export class Adam extends Optimizer {
  constructor(model: Model, options: AdamOptions = {}) {
    const w = new.target === AdamW || Object.prototype.isPrototypeOf.call(AdamW.prototype, new.target.prototype);
    super(model, options, (w ? ADAMW : ADAM) as OptimizerSpec<unknown>);
  }
  override stateDict(): AdamStateDict {
    return super.stateDict() as AdamStateDict;
  }
  override loadStateDict(s: AdamStateDict): void {
    super.loadStateDict(s);
  }
}

/** The same optimizer as Adam (decoupled decay), with torch.optim.AdamW's default
 * weightDecay of 0.01. State dicts and files of the two are interchangeable. */
export class AdamW extends Adam {
  constructor(model: Model, options: AdamOptions = {}) {
    super(model, options);
  }
}
