// Learning-rate schedules, as torch.optim.lr_scheduler: stepped after opt.step(), they write
// opt.lr and the lr of every group that has its own. Each group is scheduled from its own
// initial lr, as PyTorch schedules each param group from its `initial_lr`; a group without an lr
// of its own follows opt.lr. Like PyTorch, constructing a scheduler applies its epoch-0 lr at
// once, and the first scheduler attached to an optimizer records the initial lrs that every later
// one (and SequentialLR's parts) scales. The lrs are computed in closed form: equal to PyTorch's
// recursive (chainable) form up to float64 rounding.

import { fail, show } from "../errors.js";
import { f32Option, isObject, numberOption, readArray, readKeys, readOptions } from "../options.js";
import { isOptimizer, lrGroups, type Optimizer, type LrSet } from "./optimizer.js";

export interface SchedulerStateDict {
  type: string;
  /** Scheduler steps taken (PyTorch's last_epoch). */
  lastEpoch: number;
  /** The lrs it scales: the optimizer's and each own group's (null: follows the optimizer's). */
  baseLr: number;
  baseGroupLr: (number | null)[];
}

let schedulerBrand: (v: object) => boolean;
const isScheduler = (v: unknown): v is LRScheduler => typeof v === "object" && v !== null && schedulerBrand(v);

export abstract class LRScheduler {
  readonly optimizer: Optimizer;
  readonly #type: string;
  #base: LrSet;
  #epoch = 0;

  static {
    schedulerBrand = (v) => #type in v;
  }

  protected constructor(optimizer: Optimizer, what: string) {
    if (!isOptimizer(optimizer)) fail("OPTION", `${what}: the first argument must be an optimizer (SGD, Adam, AdamW)`);
    this.optimizer = optimizer;
    this.#type = what;
    this.#base = optimizer[lrGroups].initial();
  }

  /** The lr at `epoch` of a parameter whose initial lr is `base`. */
  abstract lrAt(base: number, epoch: number): number;

  /** Applies the lr of the current epoch (subclasses call it at the end of construction). */
  protected apply(): void {
    const t = this.#epoch;
    this.optimizer[lrGroups].set({
      lr: this.lrAt(this.#base.lr, t),
      groups: this.#base.groups.map((g) => (g === undefined ? undefined : this.lrAt(g, t))),
    });
  }

  /** Advances one epoch (call it after opt.step(), per batch or per epoch as you schedule). */
  step(): void {
    this.#epoch++;
    this.apply();
  }

  /** Scheduler steps taken (PyTorch's last_epoch). */
  get lastEpoch(): number {
    return this.#epoch;
  }

  /** The optimizer's current lr. */
  get lr(): number {
    return this.optimizer.lr;
  }

  stateDict(): SchedulerStateDict {
    return {
      type: this.#type,
      lastEpoch: this.#epoch,
      baseLr: this.#base.lr,
      baseGroupLr: this.#base.groups.map((g) => g ?? null),
    };
  }

  /** Restores lastEpoch and the base lrs; the optimizer's lrs come from its own state dict. */
  loadStateDict(s: SchedulerStateDict): void {
    const d = isObject(s) ? readKeys(s, ["type", "lastEpoch", "baseLr", "baseGroupLr"], "loadStateDict") : null;
    if (d === null || d.type !== this.#type) fail("OPTION", `loadStateDict: not a ${this.#type} state dict`);
    const epoch = numberOption(d.lastEpoch, "lastEpoch", 0, 0, Number.MAX_SAFE_INTEGER);
    if (!Number.isInteger(epoch)) fail("OPTION", `lastEpoch must be a whole number, got ${epoch}`);
    const base = f32Option(d.baseLr, "baseLr", this.#base.lr, 0);
    const groups = readArray(d.baseGroupLr, "baseGroupLr", 3);
    if (groups.length !== 3) fail("OPTION", "baseGroupLr must hold 3 entries (w, g, b)");
    const g = groups.map((v, i) => (v === null ? undefined : f32Option(v, `baseGroupLr[${i}]`, 0, 0)));
    this.#epoch = epoch;
    this.#base = { lr: base, groups: g };
  }
}

function whole(v: unknown, name: string, min: number): number {
  const n = numberOption(v, name, NaN, min);
  if (!Number.isInteger(n)) fail("OPTION", `${name} must be a whole number, got ${show(v)}`);
  return n;
}

function required(o: Record<string, unknown>, key: string, what: string): unknown {
  if (o[key] === undefined) fail("OPTION", `${what}: ${key} is required`);
  return o[key];
}

/** lr = base·γ^⌊t/stepSize⌋ (torch.optim.lr_scheduler.StepLR; γ defaults to 0.1). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Optimizer, options: { stepSize: number; gamma?: number }) {
    super(optimizer, "StepLR");
    const o = readOptions(options, ["stepSize", "gamma"], "StepLR");
    this.stepSize = whole(required(o, "stepSize", "StepLR"), "StepLR stepSize", 1);
    this.gamma = numberOption(o.gamma, "StepLR gamma", 0.1, 0);
    this.apply();
  }
  lrAt(base: number, t: number): number {
    return base * this.gamma ** Math.floor(t / this.stepSize);
  }
}

/** lr = base·γᵗ (torch.optim.lr_scheduler.ExponentialLR). */
export class ExponentialLR extends LRScheduler {
  readonly gamma: number;
  constructor(optimizer: Optimizer, options: { gamma: number }) {
    super(optimizer, "ExponentialLR");
    const o = readOptions(options, ["gamma"], "ExponentialLR");
    this.gamma = numberOption(required(o, "gamma", "ExponentialLR"), "ExponentialLR gamma", 1, 0);
    this.apply();
  }
  lrAt(base: number, t: number): number {
    return base * this.gamma ** t;
  }
}

/** lr = ηmin + (base − ηmin)·(1 + cos(π·t/tMax))/2 (torch.optim.lr_scheduler.CosineAnnealingLR;
 * past tMax it rises again, as PyTorch's does). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: Optimizer, options: { tMax: number; etaMin?: number }) {
    super(optimizer, "CosineAnnealingLR");
    const o = readOptions(options, ["tMax", "etaMin"], "CosineAnnealingLR");
    this.tMax = whole(required(o, "tMax", "CosineAnnealingLR"), "CosineAnnealingLR tMax", 1);
    this.etaMin = f32Option(o.etaMin, "CosineAnnealingLR etaMin", 0, 0);
    this.apply();
  }
  lrAt(base: number, t: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }
}

/**
 * Linear warm-up (torch.optim.lr_scheduler.LinearLR): the factor on the initial lr goes from
 * startFactor (default 1/3) to endFactor (default 1) over totalIters steps (default 5), then stays.
 */
export class LinearLR extends LRScheduler {
  readonly startFactor: number;
  readonly endFactor: number;
  readonly totalIters: number;
  constructor(optimizer: Optimizer, options: { startFactor?: number; endFactor?: number; totalIters?: number } = {}) {
    super(optimizer, "LinearLR");
    const o = readOptions(options, ["startFactor", "endFactor", "totalIters"], "LinearLR");
    this.startFactor = numberOption(o.startFactor, "LinearLR startFactor", 1 / 3, 0, 1);
    this.endFactor = numberOption(o.endFactor, "LinearLR endFactor", 1, 0, 1);
    if (this.startFactor === 0) fail("OPTION", "LinearLR startFactor must be > 0 (as PyTorch)");
    this.totalIters = o.totalIters === undefined ? 5 : whole(o.totalIters, "LinearLR totalIters", 1);
    this.apply();
  }
  lrAt(base: number, t: number): number {
    const f = this.startFactor + ((this.endFactor - this.startFactor) * Math.min(t, this.totalIters)) / this.totalIters;
    return base * f;
  }
}

/**
 * Runs schedulers one after the other (torch.optim.lr_scheduler.SequentialLR): the i-th from
 * milestone i−1 on, restarted at its epoch 0; e.g. LinearLR warm-up, then CosineAnnealingLR.
 * The parts must be schedulers of the same optimizer.
 */
export class SequentialLR extends LRScheduler {
  readonly schedulers: readonly LRScheduler[];
  readonly milestones: readonly number[];
  constructor(optimizer: Optimizer, options: { schedulers: LRScheduler[]; milestones: number[] }) {
    super(optimizer, "SequentialLR");
    const o = readOptions(options, ["schedulers", "milestones"], "SequentialLR");
    const s = readArray(required(o, "schedulers", "SequentialLR"), "SequentialLR schedulers", 1024);
    const m = readArray(required(o, "milestones", "SequentialLR"), "SequentialLR milestones", 1024);
    if (s.length === 0 || !s.every((x) => isScheduler(x) && x.optimizer === optimizer)) {
      fail("OPTION", "SequentialLR schedulers must be schedulers of this optimizer");
    }
    if (m.length !== s.length - 1) fail("OPTION", "SequentialLR needs one milestone fewer than schedulers");
    const ms = m.map((v, i) => whole(v, `SequentialLR milestones[${i}]`, 1));
    for (let i = 1; i < ms.length; i++) if (ms[i] <= ms[i - 1]) fail("OPTION", "SequentialLR milestones must increase");
    this.schedulers = s as LRScheduler[];
    this.milestones = ms;
    this.apply();
  }
  lrAt(base: number, t: number): number {
    let i = 0;
    while (i < this.milestones.length && t >= this.milestones[i]) i++;
    return this.schedulers[i].lrAt(base, i === 0 ? t : t - this.milestones[i - 1]);
  }
}
