// The core over the TypeScript kernels (backend "js"): blocks are Float32Arrays on the JS heap
// and the calls run the kernels of ts/kernels/ directly.

import type { AdaptArgs } from "../kernels/adapt.js";
import type { Rule } from "../kernels/sgd.js";
import { type Args, forwardCall, gradientsCall, objectiveCall, step } from "../kernels/step.js";
import {
  Call,
  FROZEN_RULE,
  MAX_FLOATS,
  type Block,
  type Core,
  type Frame,
  type RuleOptions,
  type Rules,
  type View,
} from "./types.js";

interface JsBlock extends Block {
  readonly data: Float32Array;
}

class JsView implements View {
  readonly ptr = 0;
  constructor(private readonly data: Float32Array) {}
  get length(): number {
    return this.data.length;
  }
  f32(): Float32Array {
    return this.data;
  }
}

function newRule(): Rule {
  return { ...FROZEN_RULE, bufReady: false, step: 0 };
}

class JsRules implements Rules {
  readonly rules: [Rule, Rule, Rule] = [newRule(), newRule(), newRule()];
  maxGradNorm = 0;
  set(param: number, o: RuleOptions): void {
    const r = this.rules[param];
    r.kind = o.kind;
    r.lr = o.lr;
    r.weightDecay = o.weightDecay;
    r.momentum = o.momentum;
    r.dampening = o.dampening;
    r.nesterov = o.nesterov;
    r.buf = o.buf === null ? null : o.buf.f32();
    r.oneMinusBeta1 = o.oneMinusBeta1;
    r.oneMinusBeta2 = o.oneMinusBeta2;
    r.eps = o.eps;
    r.expAvg = o.expAvg === null ? null : o.expAvg.f32();
    r.expAvgSq = o.expAvgSq === null ? null : o.expAvgSq.f32();
  }
  setProgress(param: number, bufReady: boolean, steps: number): void {
    const r = this.rules[param];
    r.bufReady = bufReady;
    r.step = steps;
  }
  release(): void {}
}

interface JsFrameCache extends Args {
  adaptArgs: AdaptArgs;
}

function argsOf(frame: Frame): JsFrameCache {
  const v = frame.views;
  let a = frame.cache as JsFrameCache | null;
  if (a === null || a.x !== v.x.f32() || a.wsum !== v.pack.f32()) {
    a = {
      batch: 0,
      inputs: frame.inputs,
      outputs: frame.outputs,
      x: v.x.f32(),
      targets: null,
      w: v.w.f32(),
      g: v.g.f32(),
      b: v.b.f32(),
      wsum: v.pack.f32(),
      z: v.z.f32(),
      d: v.d.f32(),
      delta: v.delta.f32(),
      unitEntropy: null,
      unitLoss: null,
      dw: v.dw.f32(),
      db: v.db.f32(),
      scratch: v.pack.f32().subarray(frame.inputs * frame.outputs),
      maxima: new Float64Array(4),
      entropyWeight: 1,
      crossEntropyWeight: 0,
      scale: 1,
      rules: null,
      maxGradNorm: 0,
      totals: new Float64Array(2),
      adapt: null,
      labelledRows: null,
      adaptArgs: {
        flags: 0,
        maxEntropy: 0,
        diversity: 0,
        sampleWeights: v.sampleWeights.f32(),
        positive: v.positive.f32(),
        mean: v.meanPrediction.f32(),
        prior: v.prior.f32(),
        marginal: v.marginal.f32(),
        marginalMomentum: 0,
        running: v.running.f32(),
        kept: 0,
        diversityLoss: 0,
      },
    };
    frame.cache = a;
  }
  return a;
}

export const jsCore: Core = {
  name: "js",
  allocate(floats: number): Block | null {
    if (!(floats >= 0 && floats <= MAX_FLOATS)) return null;
    try {
      const data = new Float32Array(floats);
      return { ptr: 0, floats, data } as JsBlock;
    } catch {
      return null; // RangeError: the JS heap cannot hold it
    }
  },
  release(): void {},
  view(block: Block, offset: number, length: number): View {
    return new JsView((block as JsBlock).data.subarray(offset, offset + length));
  },
  // Each block is an array of its own, never reused: a view kept past release reaches nothing else.
  lend(_view: View, array: Float32Array): Float32Array {
    return array;
  },
  packFloats(batch: number, inputs: number, outputs: number): number {
    return inputs * outputs + batch * outputs; // wsum = w + g, then δ's pairs
  },
  holds(): boolean {
    return false;
  },
  memoryBytes(): number {
    return 0;
  },
  createRules(): Rules {
    return new JsRules();
  },
  attach(): boolean {
    return true;
  },
  detach(frame: Frame): void {
    frame.cache = null;
  },
  run(call: Call, frame: Frame, rules: Rules | null): number {
    const a = argsOf(frame);
    const v = frame.views;
    a.batch = frame.batch;
    a.targets = frame.useTargets ? v.targets.f32() : null;
    a.unitEntropy = frame.wantUnitEntropy ? v.unitEntropy.f32() : null;
    a.unitLoss = frame.wantUnitLoss ? v.unitLoss.f32() : null;
    a.entropyWeight = frame.entropyWeight;
    a.crossEntropyWeight = frame.crossEntropyWeight;
    a.scale = frame.scale;
    a.rules = rules === null ? null : (rules as JsRules).rules;
    a.maxGradNorm = rules === null ? 0 : rules.maxGradNorm;
    a.labelledRows = frame.labelledRows;
    const f = frame.adapt;
    a.adapt = null;
    if (f !== null) {
      const r = a.adaptArgs;
      r.flags = f.flags;
      r.maxEntropy = f.maxEntropy;
      r.diversity = f.diversity;
      r.marginalMomentum = f.marginalMomentum;
      a.adapt = r;
    }
    let status: number;
    switch (call) {
      case Call.Forward:
        return forwardCall(a);
      case Call.Objective:
        status = objectiveCall(a);
        break;
      case Call.Gradients:
        status = gradientsCall(a);
        break;
      default:
        status = step(a);
    }
    const r = frame.results;
    r.loss = a.totals[0];
    r.entropy = a.totals[1];
    r.kept = f === null ? 0 : a.adaptArgs.kept;
    r.diversityLoss = f === null ? 0 : a.adaptArgs.diversityLoss;
    return status;
  },
};
