// Stochastic gradient descent, as torch.optim.SGD, fused into the core's step.
// Plain SGD (no momentum, no weight decay) is exactly the seed's rule θ ← θ − η·∂loss/∂θ.

import type { Block, Core, RuleOptions, Rules, View } from "../core/types.js";
import { fail } from "../errors.js";
import { internal, type Model, type ModelInternals, type StepResult } from "../model.js";
import { booleanOption, checkKeys, isObject, numberOption, optionsObject, type LossOptions } from "../options.js";

export type ParamName = "w" | "g" | "b";
export const PARAMS: readonly ParamName[] = ["w", "g", "b"];

export interface SGDGroup {
  lr?: number;
  weightDecay?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** Leaves this parameter exactly unchanged. */
  frozen?: boolean;
}

export interface SGDOptions {
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

export interface SGDStateDict {
  type: "SGD";
  lr: number;
  /** Steps taken since construction or reset(). */
  steps: number;
  /** Per parameter: the momentum buffer (null before the first step or without momentum). */
  state: Record<ParamName, { momentumBuffer: Float32Array | null }>;
}

const GROUP_KEYS = ["lr", "weightDecay", "momentum", "dampening", "nesterov", "frozen"] as const;
const SGD_KEYS = ["lr", "weightDecay", "momentum", "dampening", "nesterov", "groups"] as const;

interface Resolved {
  lr: number;
  ownLr: boolean;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  frozen: boolean;
}

function resolve(base: Record<string, unknown>, group: Record<string, unknown>, name: string): Resolved {
  const pick = (key: string): unknown => (group[key] !== undefined ? group[key] : base[key]);
  const r: Resolved = {
    lr: numberOption(pick("lr"), `${name}.lr`, 1e-3, 0),
    ownLr: group.lr !== undefined,
    weightDecay: numberOption(pick("weightDecay"), `${name}.weightDecay`, 0, 0),
    momentum: numberOption(pick("momentum"), `${name}.momentum`, 0, 0),
    dampening: numberOption(pick("dampening"), `${name}.dampening`, 0, 0, 1),
    nesterov: booleanOption(pick("nesterov"), `${name}.nesterov`, false),
    frozen: booleanOption(group.frozen, `${name}.frozen`, false),
  };
  if (r.nesterov && (r.momentum <= 0 || r.dampening !== 0)) {
    fail("OPTION", `${name}: nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)`);
  }
  return r;
}

export class SGD {
  readonly #model: Model;
  readonly #m: ModelInternals;
  readonly #core: Core;
  readonly #rules: Rules;
  readonly #groups: Resolved[];
  /** Momentum buffer per parameter, or null. */
  readonly #bufs: (View | null)[];
  #lr: number;
  #steps = 0;

  constructor(model: Model, options: SGDOptions = {}) {
    const o = optionsObject(options, "SGD");
    checkKeys(o, SGD_KEYS, "SGD");
    const groups = optionsObject(o.groups, "SGD groups");
    checkKeys(groups, PARAMS, "SGD groups");
    this.#groups = PARAMS.map((p) => {
      const g = groups[p];
      if (g !== undefined && !isObject(g)) fail("OPTION", `SGD groups.${p} must be an object`);
      const go = (g ?? {}) as Record<string, unknown>;
      checkKeys(go, GROUP_KEYS, `SGD groups.${p}`);
      return resolve(o, go, p === "w" ? "SGD" : `SGD groups.${p}`);
    });
    this.#lr = numberOption(o.lr, "lr", 1e-3, 0);
    if (!(model instanceof Object) || !(internal in model)) fail("OPTION", "SGD: the first argument must be a Model");
    this.#model = model;
    this.#m = model[internal];
    this.#core = this.#m.core;
    const views = this.#m.views;
    const lengths = [views.w.length, views.g.length, views.b.length];
    const need = this.#groups.map((r, i) => (r.momentum > 0 && !r.frozen ? Math.ceil(lengths[i] / 4) * 4 : 0));
    const total = need.reduce((a, b) => a + b, 0);
    const rules = this.#core.createRules();
    if (rules === null) fail("MEMORY", `SGD: the ${this.#core.name} core cannot allocate optimizer state`);
    let block: Block | null = null;
    if (total > 0) {
      block = this.#core.allocate(total);
      if (block === null) {
        rules.release();
        fail("MEMORY", `SGD: the ${this.#core.name} core cannot allocate ${total} floats of momentum`);
      }
    }
    let at = 0;
    this.#bufs = need.map((n, i) => {
      if (n === 0) return null;
      const v = this.#core.view(block as Block, at, lengths[i]);
      at += n;
      return v;
    });
    this.#rules = rules;
    // Released with the model, or when this optimizer is collected first.
    this.#m.adopt(rules, block === null ? [] : [block], this);
    this.#writeRules();
  }

  #writeRules(): void {
    for (let p = 0; p < 3; p++) {
      const r = this.#groups[p];
      const rule: RuleOptions = {
        frozen: r.frozen, lr: r.ownLr ? r.lr : this.#lr, weightDecay: r.weightDecay, momentum: r.momentum,
        dampening: r.dampening, nesterov: r.nesterov, buf: this.#bufs[p],
      };
      this.#rules.set(p, rule);
    }
  }

  /** The learning rate of every parameter without a group lr of its own. */
  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    this.#lr = numberOption(value, "lr", this.#lr, 0);
    this.#writeRules();
  }

  get model(): Model {
    return this.#model;
  }

  /** Forward + gradients + update in one call into the core; returns loss and entropy before it. */
  step(x: Float32Array, options?: LossOptions): StepResult {
    const result = this.#m.step(x, options, this.#rules, "SGD.step");
    this.#steps++;
    return result;
  }

  stateDict(): SGDStateDict {
    const state = {} as SGDStateDict["state"];
    PARAMS.forEach((p, i) => {
      const buf = this.#bufs[i];
      state[p] = { momentumBuffer: buf !== null && this.#rules.ready(i) ? buf.f32().slice() : null };
    });
    return { type: "SGD", lr: this.#lr, steps: this.#steps, state };
  }

  loadStateDict(s: SGDStateDict): void {
    if (!isObject(s) || s.type !== "SGD" || !isObject(s.state)) fail("OPTION", "loadStateDict: not an SGD state dict");
    const lr = numberOption(s.lr, "lr", this.#lr, 0);
    const steps = numberOption(s.steps, "steps", 0, 0);
    // Check everything before changing anything.
    PARAMS.forEach((p, i) => {
      const entry = (s.state as Record<string, unknown>)[p];
      if (!isObject(entry)) fail("OPTION", `loadStateDict: state.${p} is missing`);
      const b = entry.momentumBuffer;
      if (b === null || b === undefined) return;
      const view = this.#bufs[i];
      if (view === null) fail("OPTION", `loadStateDict: ${p} has no momentum in this optimizer`);
      if (!(b instanceof Float32Array)) fail("OPTION", `loadStateDict: state.${p}.momentumBuffer must be a Float32Array`);
      if (b.length !== view.length) fail("SHAPE", `loadStateDict: state.${p}.momentumBuffer has ${b.length} values, expected ${view.length}`);
      for (let k = 0; k < b.length; k++) {
        if (!Number.isFinite(b[k])) fail("NON_FINITE", `loadStateDict: state.${p}.momentumBuffer[${k}] is ${b[k]}`);
      }
    });
    this.#model[internal]; // throws DISPOSED for a disposed model
    PARAMS.forEach((p, i) => {
      const b = (s.state[p] as { momentumBuffer: Float32Array | null }).momentumBuffer;
      const view = this.#bufs[i];
      if (view === null) return;
      if (b === null || b === undefined) {
        view.f32().fill(0);
        this.#rules.setReady(i, false);
      } else {
        view.f32().set(b);
        this.#rules.setReady(i, true);
      }
    });
    this.#lr = lr;
    this.#steps = steps;
    this.#writeRules();
  }

  /** Clears the momentum buffers and the step count (parameters are untouched). */
  reset(): void {
    this.#model[internal];
    for (let i = 0; i < 3; i++) {
      this.#bufs[i]?.f32().fill(0);
      this.#rules.setReady(i, false);
    }
    this.#steps = 0;
  }
}
