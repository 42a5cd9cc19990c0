// Stochastic gradient descent, as torch.optim.SGD, fused into the core's step.
// Plain SGD (no momentum, no weight decay) is exactly the seed's rule θ ← θ − η·∂loss/∂θ;
// momentum, dampening, Nesterov and weight decay are options of the same rule (Sutskever et
// al. 2013 for Nesterov in this form). Groups, state, clipping and lr live in ./optimizer.ts.

import { RuleKind } from "../core/abi.js";
import { FROZEN_RULE, type View } from "../core/types.js";
import { fail } from "../errors.js";
import type { Model } from "../model.js";
import { booleanOption, f32Option } from "../options.js";
import {
  Optimizer,
  type BaseOptions,
  type GroupOptions,
  type OptimizerSpec,
  type OptimizerStateDict,
  type ParamName,
} from "./optimizer.js";

export { PARAMS, type ParamName } from "./optimizer.js";

export interface SGDGroup extends GroupOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export interface SGDOptions extends BaseOptions {
  /** Learning rate η (default 1e-3, as PyTorch). */
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (λθ), as torch.optim.SGD. */
  weightDecay?: number;
  /** Per-parameter options overriding the ones above. */
  groups?: Partial<Record<ParamName, SGDGroup>>;
}

export type SGDStateDict = OptimizerStateDict<"SGD", { momentumBuffer: Float32Array | null }>;

interface Hyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

const SPEC: OptimizerSpec<Hyper> = {
  name: "SGD",
  type: "SGD",
  keys: ["momentum", "dampening", "nesterov"],
  groupKeys: ["momentum", "dampening", "nesterov"],
  weightDecay: 0,
  hyper(pick, name) {
    const h: Hyper = {
      momentum: f32Option(pick("momentum"), `${name} momentum`, 0, 0),
      dampening: f32Option(pick("dampening"), `${name} dampening`, 0, 0, 1),
      nesterov: booleanOption(pick("nesterov"), `${name} nesterov`, false),
    };
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      fail("OPTION", `${name}: nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)`);
    }
    return h;
  },
  buffers: ["momentumBuffer"],
  nonNegative: [],
  needs: (h) => h.momentum > 0,
  counted: false,
  rule: (h, lr, weightDecay, bufs: Record<string, View> | null) => ({
    ...FROZEN_RULE,
    kind: RuleKind.Sgd,
    lr,
    weightDecay,
    momentum: h.momentum,
    dampening: h.dampening,
    nesterov: h.nesterov,
    buf: bufs === null ? null : bufs.momentumBuffer,
  }),
};

export class SGD extends Optimizer {
  constructor(model: Model, options: SGDOptions = {}) {
    super(model, options, SPEC as OptimizerSpec<unknown>);
  }
  override stateDict(): SGDStateDict {
    return super.stateDict() as SGDStateDict;
  }
  override loadStateDict(s: SGDStateDict): void {
    super.loadStateDict(s);
  }
}
