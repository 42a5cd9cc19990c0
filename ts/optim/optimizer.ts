// What every optimizer shares, as PyTorch's torch.optim.Optimizer: parameter groups named by
// parameter (w, g, b) with options overriding the optimizer's, per-parameter state in the core's
// memory next to the parameters, `lr` for schedules, gradient-norm clipping, state dicts, and
// one fused forward + gradient + update per step. A concrete optimizer (SGD, Adam) only says
// which options it takes, which state tensors a parameter needs and how its rule record reads.

import type { AdaptStepResult } from "../adapt/result.js";
import {
  type Block,
  type Core,
  FROZEN_RULE,
  padFloats,
  type RuleOptions,
  type Rules,
  type RuleSnapshot,
  type View,
} from "../core/types.js";
import { fail, isEntrogradError, show } from "../errors.js";
import { parseSafetensors, readF32, writeSafetensors, type TensorOut } from "../io/safetensors.js";
import { internal, isModel, type Model, type ModelInternals, type StepResult } from "../model.js";
import {
  F32_MAX,
  F32_MIN_NORMAL,
  booleanOption,
  f32Option,
  isFloat32Array,
  isObject,
  lengthOf,
  numberOption,
  read,
  readKeys,
  readOptions,
  requiredNumber,
  type AdaptOptions,
  type LossOptions,
} from "../options.js";

export type ParamName = "w" | "g" | "b";
export const PARAMS: readonly ParamName[] = ["w", "g", "b"];

/** Options every group takes. */
export interface GroupOptions {
  /** This parameter's own learning rate; schedulers scale it from its initial value. */
  lr?: number;
  weightDecay?: number;
  /** Leaves this parameter exactly unchanged (and gives it no optimizer state). */
  frozen?: boolean;
}

/** Options every optimizer takes. */
export interface BaseOptions {
  /** Learning rate of every parameter without a group lr of its own. */
  lr?: number;
  weightDecay?: number;
  /**
   * Clips the gradients to this global L2 norm before each update, as
   * torch.nn.utils.clip_grad_norm_ (norm over the parameters being updated); 0 or absent: off.
   */
  maxGradNorm?: number;
}

/** A parameter's state tensors by name (SGD: momentumBuffer; Adam: expAvg, expAvgSq). */
export type StateEntry = Record<string, Float32Array | number | null>;

export interface OptimizerStateDict<T extends string = string, E extends StateEntry = StateEntry> {
  type: T;
  /** The optimizer's lr (opt.lr). */
  lr: number;
  /** The lrs of groups with an lr of their own. */
  groupLr: Partial<Record<ParamName, number>>;
  /** Steps taken since construction or reset(). */
  steps: number;
  /** Per parameter: its state (null tensors before the first step, or when not used). */
  state: Record<ParamName, E>;
}

/** What a concrete optimizer tells the shared machinery. */
export interface OptimizerSpec<H> {
  /** Class name, for messages. */
  name: string;
  /** stateDict().type: optimizers of one type read each other's state. */
  type: string;
  /** Options beyond lr, weightDecay, maxGradNorm, groups. */
  keys: readonly string[];
  /** Group options beyond lr, weightDecay, frozen. */
  groupKeys: readonly string[];
  /** Default weight decay (0; AdamW: 0.01 as torch.optim.AdamW). */
  weightDecay: number;
  /** Reads and checks the kind's hyperparameters of one parameter; `pick` gives the group's
   * value or else the optimizer's. */
  hyper(pick: (key: string) => unknown, name: string): H;
  /** Every state tensor name this kind can have, in a fixed order. */
  buffers: readonly string[];
  /** State tensors whose values cannot be negative (Adam's second moment). */
  nonNegative: readonly string[];
  /** The state tensors one (non-frozen) parameter needs with these hyperparameters. */
  needs(h: H): boolean;
  /** Adam counts each parameter's steps (its bias corrections need them); SGD does not. */
  counted: boolean;
  /** The rule record of a non-frozen parameter. */
  rule(h: H, lr: number, weightDecay: number, bufs: Record<string, View> | null): RuleOptions;
}

interface Group<H> {
  frozen: boolean;
  weightDecay: number;
  hyper: H;
}

/** Internal: what schedulers read and write (not part of the public API). */
export const lrGroups = Symbol("entrograd.lrGroups");
export interface LrSet {
  /** The optimizer's lr. */
  lr: number;
  /** The group lrs of its own, per parameter (undefined: follows the optimizer's). */
  groups: (number | undefined)[];
}
export interface LrGroups {
  get(): LrSet;
  set(lrs: LrSet): void;
  /** The lrs when the first scheduler was attached (PyTorch's `initial_lr`): every scheduler
   * of this optimizer scales these. */
  initial(): LrSet;
}

/** torch-style snake_case names of state tensors in a saved file. */
const SNAKE: Record<string, string> = { momentumBuffer: "momentum_buffer", expAvg: "exp_avg", expAvgSq: "exp_avg_sq" };
const CAMEL: Record<string, string> = Object.fromEntries(Object.entries(SNAKE).map(([k, v]) => [v, k]));
export const OPTIMIZER_FORMAT = "entrograd-optimizer";
const FILE_VERSION = "1";
const MAX_STEPS = 0xffffffff;

let optimizerBrand: (v: object) => boolean;

/** True for an optimizer made by its constructor (a brand check, as isModel). */
export function isOptimizer(v: unknown): v is Optimizer {
  return typeof v === "object" && v !== null && optimizerBrand(v);
}

/**
 * A number as `save()` writes it (JavaScript's own shortest decimal form: "0.001", "1e-7", "12"),
 * or undefined for any other text ("0x10", " 1", "1e-1", "0.50").
 */
function canonicalNumber(text: string): number | undefined {
  const x = Number(text);
  return String(x) === text && Number.isFinite(x) ? x : undefined;
}

export abstract class Optimizer {
  readonly #spec: OptimizerSpec<unknown>;
  readonly #model: Model;
  readonly #m: ModelInternals;
  readonly #core: Core;
  readonly #rules: Rules;
  readonly #groups: Group<unknown>[];
  /** Per parameter: its state tensors by name, or null (frozen, or none needed). */
  readonly #state: (Record<string, View> | null)[];
  /** Per parameter, the counters this optimizer advances after each successful step and writes
   * into its rule record (the core reads them, never writes them): SGD's momentum buffer holds
   * a value (`ready`); Adam's updates so far (`steps`). */
  readonly #progress = PARAMS.map(() => ({ ready: false, steps: 0 }));
  #lr: number;
  readonly #groupLr: (number | undefined)[];
  #maxGradNorm: number;
  #steps = 0;
  #initialLr: LrSet | null = null;
  /** The rule records as last written (the JS kernels' copy, for the overflow rule). */
  readonly #ruleOptions: RuleOptions[] = [];
  readonly #snapshot: RuleSnapshot = { options: this.#ruleOptions, progress: this.#progress };

  static {
    optimizerBrand = (v) => #rules in v;
  }

  protected constructor(model: Model, options: object | undefined, spec: OptimizerSpec<unknown>) {
    const name = spec.name;
    // Every option is read once, into plain data, before anything is made.
    const o = readOptions(options, ["lr", "weightDecay", "maxGradNorm", "groups", ...spec.keys], name);
    const groups = readOptions(o.groups, PARAMS, `${name} groups`);
    const groupKeys = ["lr", "weightDecay", "frozen", ...spec.groupKeys];
    const given = PARAMS.map((p) => {
      const g = groups[p];
      if (g !== undefined && !isObject(g)) fail("OPTION", `${name} groups.${p} must be an object`);
      return g === undefined ? null : readOptions(g, groupKeys, `${name} groups.${p}`);
    });
    this.#spec = spec;
    // The cores hold these as float32: beyond its range (or below its normal range) is OPTION.
    this.#lr = f32Option(o.lr, `${name} lr`, 1e-3, 0);
    this.#maxGradNorm = f32Option(o.maxGradNorm, `${name} maxGradNorm`, 0, 0);
    this.#groupLr = [];
    this.#groups = PARAMS.map((p, i) => {
      const go = given[i] ?? ({} as Record<string, unknown>);
      const where = `${name} groups.${p}`;
      const pick = (key: string): unknown => (go[key] !== undefined ? go[key] : o[key]);
      const label = given[i] === null ? name : where;
      this.#groupLr[i] = go.lr === undefined ? undefined : f32Option(go.lr, `${where}.lr`, 0, 0);
      return {
        frozen: booleanOption(go.frozen, `${where}.frozen`, false),
        weightDecay: f32Option(pick("weightDecay"), `${label} weightDecay`, spec.weightDecay, 0),
        hyper: spec.hyper(pick, label),
      };
    });
    if (!isModel(model)) fail("OPTION", `${name}: the first argument must be a Model`);
    this.#model = model;
    this.#m = model[internal];
    this.#core = this.#m.core;
    const views = this.#m.views;
    const lengths = [views.w.length, views.g.length, views.b.length];
    const needs = this.#groups.map((g) => !g.frozen && spec.needs(g.hyper));
    const total = needs.reduce((sum, n, i) => sum + (n ? spec.buffers.length * padFloats(lengths[i]) : 0), 0);
    const rules = this.#core.createRules();
    if (rules === null) fail("MEMORY", `${name}: the ${this.#core.name} core cannot allocate optimizer state`);
    let block: Block | null = null;
    if (total > 0) {
      block = this.#core.allocate(total);
      if (block === null) {
        rules.release();
        fail("MEMORY", `${name}: the ${this.#core.name} core cannot allocate ${total} floats of optimizer state`);
      }
    }
    let at = 0;
    this.#state = needs.map((n, i) => {
      if (!n) return null;
      const entry: Record<string, View> = {};
      for (const b of spec.buffers) {
        entry[b] = this.#core.view(block as Block, at, lengths[i]);
        at += padFloats(lengths[i]);
      }
      return entry;
    });
    this.#rules = rules;
    this.#rules.maxGradNorm = this.#maxGradNorm;
    // Released with the model, or when this optimizer is collected first.
    this.#m.adopt(rules, block === null ? [] : [block], this);
    this.#writeRules();
  }

  /** Rewrites the rule records. They live in the model's core memory and go back to the
   *  allocator with it: after dispose() that memory may hold another model, so DISPOSED. */
  #writeRules(): void {
    this.#model[internal]; // throws DISPOSED for a disposed model
    for (let i = 0; i < 3; i++) {
      const g = this.#groups[i];
      const rule = g.frozen
        ? FROZEN_RULE
        : this.#spec.rule(g.hyper, this.lrOf(PARAMS[i]), g.weightDecay, this.#state[i]);
      this.#rules.set(i, rule);
      this.#ruleOptions[i] = rule;
    }
  }

  /** The learning rate of every parameter without a group lr of its own (read and write). */
  get lr(): number {
    return this.#lr;
  }
  set lr(value: number) {
    const lr = f32Option(requiredNumber(value, "lr"), "lr", this.#lr, 0);
    this.#model[internal]; // DISPOSED before anything changes
    this.#lr = lr;
    this.#writeRules();
  }

  /** The learning rate parameter `p` is updated with: its group's, else the optimizer's. */
  lrOf(p: ParamName): number {
    const i = PARAMS.indexOf(p);
    if (i < 0) fail("OPTION", `lrOf: the parameters are "w", "g", "b", got ${show(p)}`);
    return this.#groupLr[i] ?? this.#lr;
  }

  /** Gradient-norm clipping threshold (0: off); read and write. */
  get maxGradNorm(): number {
    return this.#maxGradNorm;
  }
  set maxGradNorm(value: number) {
    this.#maxGradNorm = f32Option(requiredNumber(value, "maxGradNorm"), "maxGradNorm", this.#maxGradNorm, 0);
    this.#rules.maxGradNorm = this.#maxGradNorm;
  }

  get model(): Model {
    return this.#model;
  }

  /** Internal: the lrs schedulers scale. */
  get [lrGroups](): LrGroups {
    return {
      get: () => ({ lr: this.#lr, groups: this.#groupLr.slice() }),
      set: ({ lr, groups }) => {
        // A schedule's lr beyond float32 is OPTION (nothing changes); below its normal range it
        // is 0, as the cores would hold it, so the optimizer (and its file) holds that too.
        const held = (v: number, what: string): number => {
          if (!(Math.abs(v) <= F32_MAX)) fail("OPTION", `the schedule's ${what} is ${v}, beyond float32`);
          return Math.abs(v) < F32_MIN_NORMAL ? 0 : v;
        };
        const next = held(lr, "lr");
        const nextGroups = groups.map((g, i) => (g === undefined ? undefined : held(g, `lr of ${PARAMS[i]}`)));
        this.#model[internal]; // DISPOSED before anything changes
        this.#lr = next;
        for (let i = 0; i < 3; i++) this.#groupLr[i] = nextGroups[i];
        this.#writeRules();
      },
      initial: () => {
        this.#initialLr ??= { lr: this.#lr, groups: this.#groupLr.slice() };
        return { lr: this.#initialLr.lr, groups: this.#initialLr.groups.slice() };
      },
    };
  }

  /**
   * One fused forward + gradient (+ clipping) + update in one call into the core; returns the
   * loss and entropy before the update (and, with `adapt`, the adaptation metrics). Throws
   * (changing nothing) when anything is not finite.
   */
  step(x: Float32Array, options: LossOptions & { adapt: AdaptOptions }): AdaptStepResult;
  step(x: Float32Array, options?: LossOptions): StepResult;
  step(x: Float32Array, options?: LossOptions): StepResult {
    const result = this.#m.step(x, options, this.#rules, this.#snapshot, `${this.#spec.name}.step`);
    // The step succeeded: every parameter with state has had one more update.
    for (let i = 0; i < 3; i++) {
      if (this.#state[i] === null) continue;
      if (this.#spec.counted) this.#setProgress(i, false, Math.min(this.#progress[i].steps + 1, MAX_STEPS));
      else this.#setProgress(i, true, 0);
    }
    this.#steps++;
    return result;
  }

  #setProgress(i: number, ready: boolean, steps: number): void {
    const p = this.#progress[i];
    p.ready = ready;
    p.steps = steps;
    this.#rules.setProgress(i, ready, steps);
  }

  #hasState(i: number): boolean {
    const p = this.#progress[i];
    return this.#spec.counted ? p.steps > 0 : p.ready;
  }

  /** The optimizer's state as plain data (structuredClone-able); tensors are copies. */
  stateDict(): OptimizerStateDict {
    this.#model[internal]; // throws DISPOSED for a disposed model
    const state = {} as Record<ParamName, StateEntry>;
    PARAMS.forEach((p, i) => {
      const entry: StateEntry = {};
      if (this.#spec.counted) entry.step = this.#progress[i].steps;
      const s = this.#state[i];
      const has = s !== null && this.#hasState(i);
      for (const b of this.#spec.buffers) entry[b] = has ? (s as Record<string, View>)[b].f32().slice() : null;
      state[p] = entry;
    });
    const groupLr: Partial<Record<ParamName, number>> = {};
    PARAMS.forEach((p, i) => {
      if (this.#groupLr[i] !== undefined) groupLr[p] = this.#groupLr[i];
    });
    return { type: this.#spec.type, lr: this.#lr, groupLr, steps: this.#steps, state };
  }

  /** Restores stateDict() output (of an optimizer of the same type over the same shapes).
   * Checks everything first: a failing call changes nothing. */
  loadStateDict(s: OptimizerStateDict): void {
    const spec = this.#spec;
    const what = "loadStateDict";
    // Read once, as plain data, before anything is checked or written.
    const d = isObject(s) ? readKeys(s, ["type", "lr", "groupLr", "steps", "state"], what) : null;
    if (d === null || d.type !== spec.type || !isObject(d.state)) {
      fail("OPTION", `${what}: not ${spec.type === "Adam" ? "an" : "a"} ${spec.type} state dict`);
    }
    const lr = f32Option(d.lr, "lr", this.#lr, 0);
    const steps = numberOption(d.steps, "steps", 0, 0, Number.MAX_SAFE_INTEGER);
    if (!Number.isInteger(steps)) fail("OPTION", `${what}: steps must be a whole number, got ${steps}`);
    const groupLr = this.#groupLr.slice();
    if (d.groupLr !== undefined) {
      if (!isObject(d.groupLr)) fail("OPTION", `${what}: groupLr must be an object`);
      const given = readOptions(d.groupLr, PARAMS, `${what}: groupLr`);
      PARAMS.forEach((p, i) => {
        const v = given[p];
        groupLr[i] = v === undefined ? undefined : f32Option(v, `groupLr.${p}`, 0, 0);
      });
    }
    const state = d.state as Record<string, unknown>;
    const plan = PARAMS.map((p, i) => {
      const raw = read(state, p, `${what}: state`);
      if (!isObject(raw)) fail("OPTION", `${what}: state.${p} is missing`);
      const entry = readKeys(raw, [...spec.buffers, "step"], `${what}: state.${p}`);
      let count = 0;
      if (spec.counted) {
        count = numberOption(entry.step, `state.${p}.step`, 0, 0, MAX_STEPS);
        if (!Number.isInteger(count)) fail("OPTION", `${what}: state.${p}.step must be a whole number`);
      }
      const views = this.#state[i];
      const given: (Float32Array | null)[] = spec.buffers.map((b) => {
        const t = entry[b];
        if (t === null || t === undefined) return null;
        if (views === null) fail("OPTION", `${what}: ${p} has no ${b} in this optimizer`);
        if (!isFloat32Array(t)) fail("OPTION", `${what}: state.${p}.${b} must be a Float32Array`);
        const n = views[b].length;
        const length = lengthOf(t);
        if (length !== n) fail("SHAPE", `${what}: state.${p}.${b} has ${length} values, expected ${n}`);
        const nonNegative = spec.nonNegative.includes(b);
        for (let k = 0; k < length; k++) {
          if (!Number.isFinite(t[k])) fail("NON_FINITE", `${what}: state.${p}.${b}[${k}] is ${t[k]}`);
          if (nonNegative && t[k] < 0) fail("OPTION", `${what}: state.${p}.${b}[${k}] is ${t[k]}, below 0`);
        }
        return t;
      });
      const present = given.filter((t) => t !== null).length;
      if (present !== 0 && present !== given.length) {
        fail("OPTION", `${what}: state.${p} has some of ${spec.buffers.join(", ")} but not all`);
      }
      if (spec.counted && count > 0 !== present > 0) {
        fail("OPTION", `${what}: state.${p}.step is ${count} but its moments are ${present > 0 ? "given" : "missing"}`);
      }
      if (spec.counted && views === null && count > 0) fail("OPTION", `${what}: ${p} is frozen in this optimizer`);
      return { given, count, ready: present > 0 };
    });
    this.#model[internal]; // throws DISPOSED for a disposed model
    plan.forEach(({ given, count, ready }, i) => {
      const views = this.#state[i];
      if (views !== null) {
        spec.buffers.forEach((b, k) => {
          const t = given[k];
          if (t === null) views[b].f32().fill(0);
          else views[b].f32().set(t);
        });
      }
      this.#setProgress(i, ready && !spec.counted, spec.counted ? count : 0);
    });
    this.#lr = lr;
    for (let i = 0; i < 3; i++) this.#groupLr[i] = groupLr[i];
    this.#steps = steps;
    this.#writeRules();
  }

  /** Forgets the state (buffers, moments, step counts); parameters and lrs are untouched. */
  reset(): void {
    this.#model[internal];
    for (let i = 0; i < 3; i++) {
      const s = this.#state[i];
      if (s !== null) for (const b of this.#spec.buffers) s[b].f32().fill(0);
      this.#setProgress(i, false, 0);
    }
    this.#steps = 0;
  }

  /**
   * The state in its own safetensors file: tensors "<param>.<name>" (torch names: w.exp_avg,
   * w.exp_avg_sq, w.momentum_buffer), F32 little-endian, and __metadata__ with format
   * "entrograd-optimizer", version, type, lr, group lrs, steps and each parameter's step.
   */
  save(): Uint8Array {
    const sd = this.stateDict();
    const tensors: TensorOut[] = [];
    const meta: Record<string, string> = {
      format: OPTIMIZER_FORMAT,
      version: FILE_VERSION,
      type: sd.type,
      lr: String(sd.lr),
      steps: String(sd.steps),
    };
    for (const p of PARAMS) {
      const e = sd.state[p];
      if (sd.groupLr[p] !== undefined) meta[`${p}.lr`] = String(sd.groupLr[p]);
      if (typeof e.step === "number") meta[`${p}.step`] = String(e.step);
      for (const b of this.#spec.buffers) {
        const t = e[b];
        if (t instanceof Float32Array) tensors.push({ name: `${p}.${SNAKE[b]}`, shape: this.#shapeOf(p), data: t });
      }
    }
    return writeSafetensors(tensors, meta);
  }

  /** Restores what save() wrote. A file that is not one: EntrogradError FORMAT. */
  load(bytes: Uint8Array): void {
    const file = parseSafetensors(bytes, `${this.#spec.name}.load`);
    const bad: (why: string) => never = (why) => fail("FORMAT", `${this.#spec.name}.load: ${why}`);
    const meta = file.metadata ?? bad("no __metadata__: not an entrograd optimizer file");
    if (meta.format !== OPTIMIZER_FORMAT) bad(`__metadata__.format is ${show(meta.format)}, not "${OPTIMIZER_FORMAT}"`);
    if (meta.version !== FILE_VERSION) bad(`unsupported version ${show(meta.version)}`);
    if (meta.type !== this.#spec.type) bad(`the file holds ${show(meta.type)} state, this is ${this.#spec.type}`);
    // Numbers only in the form save() writes them: "0x10" is not 16 here, nor " 1" 1.
    const num = (key: string, whole: boolean): number | undefined => {
      const v = meta[key];
      if (v === undefined) return undefined;
      const x = canonicalNumber(v);
      if (x === undefined || x < 0 || (whole && !Number.isInteger(x))) bad(`__metadata__.${key} is ${show(v)}`);
      return x;
    };
    const state = {} as Record<ParamName, StateEntry>;
    const groupLr: Partial<Record<ParamName, number>> = {};
    const known = new Set<string>();
    for (const p of PARAMS) {
      const entry: StateEntry = {};
      if (this.#spec.counted) entry.step = num(`${p}.step`, true) ?? 0;
      const lr = num(`${p}.lr`, false);
      if (lr !== undefined) groupLr[p] = lr;
      for (const b of this.#spec.buffers) {
        const name = `${p}.${SNAKE[b]}`;
        const t = file.tensors.get(name);
        known.add(name);
        if (t === undefined) {
          entry[b] = null;
          continue;
        }
        const shape = this.#shapeOf(p);
        if (t.dtype !== "F32") bad(`${name} is ${t.dtype}, not F32`);
        if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k])) {
          bad(`${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
        }
        entry[b] = readF32(file, t, name, `${this.#spec.name}.load`);
      }
      state[p] = entry;
    }
    for (const name of file.tensors.keys()) {
      if (!known.has(name)) {
        const [, tail] = name.split(".", 2);
        bad(
          `unexpected tensor ${show(name)}${tail !== undefined && CAMEL[tail] !== undefined ? ` (not ${this.#spec.type} state)` : ""}`,
        );
      }
    }
    const sd: OptimizerStateDict = {
      type: this.#spec.type,
      lr: num("lr", false) ?? bad("__metadata__.lr is missing"),
      groupLr,
      steps: num("steps", true) ?? 0,
      state,
    };
    try {
      this.loadStateDict(sd);
    } catch (e) {
      // A file that does not fit this optimizer (shapes, frozen parameters) is a FORMAT error.
      if (isEntrogradError(e) && e.code !== "DISPOSED") bad(e.message);
      throw e;
    }
  }

  #shapeOf(p: ParamName): number[] {
    const m = this.#model;
    return p === "b" ? [m.outputs] : [m.outputs, m.inputs];
  }
}
