// The Model: one sigmoid layer z = x·(W+G)ᵀ + b, D = σ(z), whose parameters, gradients and
// scratch live in a core's memory (WebAssembly or JS) and are handed out as live views.

import { AdaptFlag } from "./core/abi.js";
import { coreFor, inCoreMemory, threads } from "./core/registry.js";
import { AdaptStepResult } from "./adapt/result.js";
import {
  Call,
  Frame,
  type AdaptFrame,
  type BackendName,
  type Block,
  type Core,
  type FrameViews,
  padFloats,
  type RuleSnapshot,
  type Rules,
  type View,
} from "./core/types.js";
import { rerunExactly } from "./core/exact.js";
import { Status } from "./core/abi.js";
import { checkStatus, fail, foreign, show } from "./errors.js";
import {
  bufferOf,
  byteOffsetOf,
  choiceOption,
  F32_MAX,
  f32Option,
  isFloat32Array,
  isTypedArray,
  lengthOf,
  lossSpec,
  newLossSpec,
  numberOption,
  plainView,
  read,
  readOptions,
  sizeOption,
  type LossOptions,
  type LossSpec,
  type Reduction,
} from "./options.js";
import { initWeights, type InitName } from "./rng.js";
import { parseSafetensors, readF32, writeSafetensors } from "./io/safetensors.js";

export interface ModelOptions {
  inputs: number;
  outputs: number;
  /** Initialisation of w (g and b start at 0). Default "xavier". */
  init?: InitName;
  /** Same seed → same parameters on every backend. Default 0. */
  seed?: number;
  /** Default "auto": the best backend loaded (see backend()). */
  backend?: BackendName | "auto";
  /**
   * Threads this model's calls may use, at most threads() (the default; more is taken as
   * threads()). 1 keeps it on the calling thread: bitwise the one-thread backend. Only the
   * wasm-simd backend has threads; on the others it is 1.
   */
  threads?: number;
}

export interface FromOptions {
  inputs: number;
  outputs: number;
  w: ArrayLike<number>;
  g?: ArrayLike<number>;
  b?: ArrayLike<number>;
  backend?: BackendName | "auto";
  threads?: number;
}

export interface ForwardResult {
  /** batch × outputs pre-activations; valid until the next call on the model. */
  z: Float32Array;
  /** batch × outputs σ(z); valid until the next call on the model. */
  d: Float32Array;
}

export interface GradientsResult<T = number> {
  /** The weighted loss under the reduction (per unit for "none"). */
  loss: T;
  /** The entropy H alone, in bits, under the reduction (per unit for "none"). */
  entropy: T;
  /** ∂loss/∂W, outputs × inputs; the same memory as dg. Valid until the next call. */
  dw: Float32Array;
  /** ∂loss/∂G, equal to dw. */
  dg: Float32Array;
  /** ∂loss/∂b, outputs. */
  db: Float32Array;
  /** With the adapt option: its metrics (loss and entropy as above). */
  adapt?: AdaptStepResult;
}

/** The per-input statistics a model standardises its inputs with (see setInputStats). */
export interface InputStats {
  /** Per input: the mean subtracted. */
  mean: Float32Array;
  /** Per input: the standard deviation divided by, never below minStd. */
  std: Float32Array;
  /** The floor: a standard deviation below it was raised to it (near-constant inputs). */
  minStd: number;
}

export interface StepResult {
  /** The loss before the update. */
  loss: number;
  /** The entropy in bits before the update. */
  entropy: number;
}

const INITS: readonly InitName[] = ["xavier", "uniform", "normal", "zeros"];
const BACKENDS: readonly (BackendName | "auto")[] = ["auto", "wasm-simd", "wasm", "js"];
const MODEL_KEYS = ["inputs", "outputs", "init", "seed", "backend", "threads"] as const;
const FROM_KEYS = ["inputs", "outputs", "w", "g", "b", "backend", "threads"] as const;
const LOAD_KEYS = ["backend", "threads"] as const;

/** A model's threads option: a whole number ≥ 1 (default threads()), at most threads(). */
function threadsOption(v: unknown): number {
  if (v === undefined) return threads();
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    fail("OPTION", `threads must be a whole number of at least 1, got ${show(v)}`);
  return Math.min(v, threads());
}

/** __metadata__ of a saved model: the format, its version, and the entropy's units. */
export const MODEL_FORMAT = "entrograd";
export const MODEL_FILE_VERSION = "1";
/** The version of files with the optional parts: input statistics, prior, source entropy. */
export const MODEL_FILE_VERSION_SOURCE = "2";
const TENSORS = ["w", "g", "b", "input_mean", "input_std", "prior"];
/** A number in metadata: plain decimal (JSON's number syntax), as String(number) writes it. */
const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/** Blocks a model owns, freed together by dispose() or, if it is never called, by the GC. */
interface Owned {
  core: Core;
  blocks: Block[];
  frame: Frame | null;
  rules: Rules[];
}

function releaseAll(o: Owned): void {
  for (const r of o.rules) r.release();
  if (o.frame !== null) o.core.detach(o.frame);
  for (const b of o.blocks) o.core.release(b);
  o.rules.length = 0;
  o.blocks.length = 0;
  o.frame = null;
}

// Not every runtime has FinalizationRegistry (older workerd); dispose() never needs it.
const finalizer = typeof FinalizationRegistry === "function" ? new FinalizationRegistry<Owned>(releaseAll) : null;

/**
 * Optimizer state a model adopted, handed back when the optimizer that owns it is collected
 * first: a new optimizer per phase or trial must not pile up state in the model until it is
 * disposed. Built outside any method so the closure holds no Model (which would keep it alive).
 */
function releaser(o: Owned, rules: Rules | null, blocks: readonly Block[]): () => void {
  return () => {
    // Nothing to do if the model was disposed (or collected) first: releaseAll took them.
    if (rules !== null) {
      const i = o.rules.indexOf(rules);
      if (i >= 0) {
        o.rules.splice(i, 1);
        rules.release();
      }
    }
    for (const b of blocks) {
      const i = o.blocks.indexOf(b);
      if (i >= 0) {
        o.blocks.splice(i, 1);
        o.core.release(b);
      }
    }
  };
}

const optimizerFinalizer =
  typeof FinalizationRegistry === "function" ? new FinalizationRegistry<() => void>((release) => release()) : null;

const NONE: readonly Block[] = [];

const disposeSymbol: symbol = (Symbol as unknown as { dispose?: symbol }).dispose ?? Symbol.for("Symbol.dispose");

/** On a subclass of Model: the one backend its models run (entrograd/js's Model: "js"). */
export const ONLY_BACKEND = Symbol("entrograd.onlyBackend");

/** The class a static factory was called on (Model or a subclass), else Model. */
function modelClass(c: unknown): typeof Model {
  return typeof c === "function" && (c === Model || c.prototype instanceof Model) ? (c as typeof Model) : Model;
}

/** Internal entry points for the optimizers (not exported from the package). */
export const internal = Symbol("entrograd.internal");

export interface ModelInternals {
  core: Core;
  views: FrameViews;
  /** One fused forward + gradient + update by the rules (written from `snapshot`), in one
   *  call into the core. */
  step(
    x: Float32Array,
    options: LossOptions | undefined,
    rules: Rules,
    snapshot: RuleSnapshot,
    what: string,
  ): StepResult;
  /** Optimizer state lives and dies with the model, or with `owner` (the optimizer) when that
   *  is collected first. */
  adopt(rules: Rules | null, blocks: readonly Block[], owner?: object): void;
}

let modelBrand: (v: object) => boolean;

/** True for a Model made by its constructor (a brand check: no user code runs, unlike
 *  `instanceof` and `in`, which ask a Proxy's traps and accept Object.create(Model.prototype)). */
export function isModel(v: unknown): v is Model {
  return typeof v === "object" && v !== null && modelBrand(v);
}

export class Model implements Disposable {
  /** `using m = new Model(...)` disposes the model at the end of the block. */
  declare [Symbol.dispose]: () => void;
  readonly #core: Core;
  readonly #inputs: number;
  readonly #outputs: number;
  readonly #owned: Owned;
  #disposed = false;
  #params: Block;
  #frame: Frame;
  #capacity = 0;
  #staging: Block | null = null;
  #work: Block | null = null;
  readonly #spec: LossSpec = newLossSpec();
  readonly #adapt: AdaptFrame = { flags: 0, maxEntropy: 0, diversity: 0, marginalMomentum: 0 };
  /** Input statistics: when set, every call first standardises x into #xStd, which the core
   * reads as its x. Null: the core reads the staging area itself (no extra pass). */
  #stats: InputStats | null = null;
  /** The staging area for x (m.input); frame.views.x is it, or #xStd's view while standardising. */
  #xStaging: View | null = null;
  /** capacity × inputs floats of standardised x, allocated only while statistics are set. */
  #xStd: Block | null = null;
  /** Per output, the training label frequency (fit() records it; the diversity term's prior). */
  #prior: Float32Array | null = null;
  /** The median per-sample entropy (bits) on the training data, recorded by fit(). */
  #sourceEntropy: number | null = null;

  static {
    modelBrand = (v) => #core in v;
  }

  constructor(options: ModelOptions) {
    const o = readOptions(options, MODEL_KEYS, "new Model");
    const inputs = sizeOption(o.inputs, "inputs");
    const outputs = sizeOption(o.outputs, "outputs");
    const init = choiceOption(o.init, "init", INITS, "xavier");
    const seed = numberOption(o.seed, "seed", 0);
    if (!Number.isInteger(seed)) fail("OPTION", `seed must be a whole number, got ${seed}`);
    let name = choiceOption(o.backend, "backend", BACKENDS, "auto");
    // A class that runs one backend only (entrograd/js's Model) whatever init() registered.
    const only = (new.target as unknown as { [ONLY_BACKEND]?: BackendName })[ONLY_BACKEND];
    if (only !== undefined) {
      if (name !== "auto" && name !== only)
        fail("OPTION", `backend "${name}": this entry has the ${only} backend only`);
      name = only;
    }
    const wanted = threadsOption(o.threads);
    this.#core = coreFor(name, wanted);
    this.#inputs = inputs;
    this.#outputs = outputs;
    this.#owned = { core: this.#core, blocks: [], frame: null, rules: [] };
    const { params, frame } = this.#build();
    this.#params = params;
    this.#frame = frame;
    // The threaded backend's core is another than the classic one: only it splits calls.
    frame.threads = this.#core === coreFor(name) ? 1 : wanted;
    initWeights(frame.views.w.f32(), init, seed, inputs, outputs);
  }

  /** A model holding copies of the given parameters (g and b default to 0). */
  static from(options: FromOptions): Model {
    const o = readOptions(options, FROM_KEYS, "Model.from");
    const inputs = sizeOption(o.inputs, "inputs");
    const outputs = sizeOption(o.outputs, "outputs");
    // Copies first: the arrays may be views of a core's memory (another model's w, or this
    // model's own for clone()), which creating the model can grow and so detach.
    const copies: Partial<Record<"w" | "g" | "b", Float32Array>> = {};
    for (const key of ["w", "g", "b"] as const) {
      const value = o[key];
      if (value === undefined && key !== "w") continue;
      const want = key === "b" ? outputs : outputs * inputs;
      copies[key] = copyValues(value, want, `Model.from: ${key}`);
    }
    // biome-ignore lint/complexity/noThisInStatic: the class it was called on (entrograd/js's Model runs js only)
    const m = new (modelClass(this))({
      inputs,
      outputs,
      init: "zeros",
      backend: o.backend as BackendName | "auto" | undefined,
      threads: o.threads as number | undefined,
    });
    m.#views()
      .w.f32()
      .set(copies.w as Float32Array);
    if (copies.g !== undefined) m.#views().g.f32().set(copies.g);
    if (copies.b !== undefined) m.#views().b.f32().set(copies.b);
    return m;
  }

  /** Allocates parameters, gradients and the frame; nothing is left allocated if it fails. */
  #build(): { params: Block; frame: Frame } {
    const core = this.#core,
      inputs = this.#inputs,
      outputs = this.#outputs;
    const P = padFloats(inputs * outputs),
      O = padFloats(outputs);
    const params = this.#allocate(2 * P + O);
    const grads = this.#allocate(P + 6 * O);
    const none = core.view(params, 0, 0);
    const views: FrameViews = {
      w: core.view(params, 0, inputs * outputs),
      g: core.view(params, P, inputs * outputs),
      b: core.view(params, 2 * P, outputs),
      dw: core.view(grads, 0, inputs * outputs),
      db: core.view(grads, P, outputs),
      pack: none,
      positive: core.view(grads, P + O, outputs),
      meanPrediction: core.view(grads, P + 2 * O, outputs),
      prior: core.view(grads, P + 3 * O, outputs),
      marginal: core.view(grads, P + 4 * O, outputs),
      running: core.view(grads, P + 5 * O, outputs),
      x: none,
      targets: none,
      z: none,
      d: none,
      delta: none,
      unitEntropy: none,
      unitLoss: none,
      sampleWeights: none,
    };
    const frame = new Frame(inputs, outputs, views);
    if (!core.attach(frame)) this.#outOfMemory(0);
    this.#owned.frame = frame;
    if (core.name !== "js" && finalizer !== null) finalizer.register(this, this.#owned, this.#owned);
    return { params, frame };
  }

  #allocate(floats: number): Block {
    const block = this.#core.allocate(floats);
    if (block === null) this.#outOfMemory(floats);
    this.#owned.blocks.push(block);
    return block;
  }

  #outOfMemory(floats: number): never {
    if (this.#params === undefined) releaseAll(this.#owned); // a half-built model frees what it got
    fail("MEMORY", `the ${this.#core.name} core cannot allocate ${floats} floats (${(floats * 4) / 2 ** 20} MiB)`);
  }

  /**
   * Makes room for `batch` rows. Capacity at least doubles, so a growing batch reallocates
   * O(log n) times. The old staging and work blocks are returned, no longer owned: the caller
   * releases them once nothing reads them any more (the batch being staged may be a view of
   * them). Views users kept of them (m.input, z, d) keep them quarantined (core/leases.ts).
   */
  #reserve(batch: number): readonly Block[] {
    if (batch <= this.#capacity) return NONE;
    const core = this.#core,
      inputs = this.#inputs,
      outputs = this.#outputs;
    // The core's scratch for a call on `rows` rows (2³²-1 from a wasm core when it cannot fit).
    const packOf = (rows: number) => padFloats(core.packFloats(rows, inputs, outputs));
    const fits = (rows: number) =>
      padFloats(rows * inputs) + padFloats(rows * outputs) <= 2 ** 30 &&
      5 * padFloats(rows * outputs) + padFloats(rows) + packOf(rows) <= 2 ** 30;
    if (!fits(batch)) fail("MEMORY", `a batch of ${batch} × ${inputs} cannot fit in the core`);
    // Doubled capacity first (O(log n) reallocations as a batch grows); when that cannot fit or
    // be allocated, exactly the batch: a batch that fits must not fail for the doubling's sake.
    const doubled = Math.max(batch, 2 * this.#capacity);
    let cap = 0,
      staging: Block | null = null,
      work: Block | null = null;
    for (const rows of doubled > batch && fits(doubled) ? [doubled, batch] : [batch]) {
      staging = core.allocate(padFloats(rows * inputs) + padFloats(rows * outputs));
      // The work block: z, d, delta, unitEntropy, unitLoss (rows × outputs each), sample weights (rows),
      // the core's packing scratch.
      work = staging === null ? null : core.allocate(5 * padFloats(rows * outputs) + padFloats(rows) + packOf(rows));
      if (work !== null) {
        cap = rows;
        break;
      }
      if (staging !== null) core.release(staging);
      staging = null;
    }
    if (staging === null || work === null) fail("MEMORY", `the ${core.name} core cannot grow to a batch of ${batch}`);
    let xStd: Block | null = null;
    if (this.#stats !== null) {
      xStd = core.allocate(padFloats(cap * inputs));
      if (xStd === null) {
        core.release(staging);
        core.release(work);
        fail("MEMORY", `the ${core.name} core cannot grow to a batch of ${batch}`);
      }
    }
    const X = padFloats(cap * inputs),
      Y = padFloats(cap * outputs),
      S = padFloats(cap),
      K = packOf(cap);
    const blocks = this.#owned.blocks;
    const retired = this.#staging === null ? [] : [this.#staging, this.#work as Block];
    for (const b of retired) blocks.splice(blocks.indexOf(b), 1);
    blocks.push(staging, work);
    this.#staging = staging;
    this.#work = work;
    this.#capacity = cap;
    const n = cap * outputs;
    const v = this.#frame.views;
    this.#xStaging = core.view(staging, 0, cap * inputs);
    this.#swapStd(xStd);
    this.#frame.views = {
      ...v,
      x: xStd === null ? this.#xStaging : core.view(xStd, 0, cap * inputs),
      targets: core.view(staging, X, n),
      z: core.view(work, 0, n),
      d: core.view(work, Y, n),
      delta: core.view(work, 2 * Y, n),
      unitEntropy: core.view(work, 3 * Y, n),
      unitLoss: core.view(work, 4 * Y, n),
      sampleWeights: core.view(work, 5 * Y, cap),
      pack: core.view(work, 5 * Y + S, K),
    };
    return retired;
  }

  /** Makes `block` the standardised-x scratch (null: none), releasing the one before. */
  #swapStd(block: Block | null): void {
    const old = this.#xStd;
    if (old !== null) {
      const blocks = this.#owned.blocks;
      blocks.splice(blocks.indexOf(old), 1);
      this.#core.release(old); // scratch no view handed out ever shows
    }
    if (block !== null) this.#owned.blocks.push(block);
    this.#xStd = block;
  }

  #views(): FrameViews {
    if (this.#disposed) fail("DISPOSED", "this model was disposed");
    return this.#frame.views;
  }

  /** `a`, a view of `view`'s floats, handed to the user. The core keeps its memory from
   *  anything else while the user may hold it (core/leases.ts); it does not keep the model alive. */
  #handOut(view: View, a: Float32Array): Float32Array {
    return this.#core.lend(view, a);
  }

  #param(which: "w" | "g" | "b"): Float32Array {
    const v = this.#views()[which];
    return this.#handOut(v, v.f32());
  }

  get inputs(): number {
    return this.#inputs;
  }
  get outputs(): number {
    return this.#outputs;
  }
  get backend(): BackendName {
    return this.#core.name;
  }
  /** Threads this model's calls may use (1: the calling thread alone). */
  get threads(): number {
    return this.#frame.threads;
  }
  /** Live view of W (outputs × inputs). Writing it changes the model. */
  get w(): Float32Array {
    return this.#param("w");
  }
  /** Live view of G (outputs × inputs). */
  get g(): Float32Array {
    return this.#param("g");
  }
  /** Live view of b (outputs). */
  get b(): Float32Array {
    return this.#param("b");
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * The statistics every call standardises the inputs with, `x̃ = (x − mean)/std` per input,
   * before the layer: z = (W+G)·x̃ + b. Copies; null when the model takes x as it is.
   */
  get inputStats(): InputStats | null {
    this.#views();
    const s = this.#stats;
    return s === null ? null : { mean: s.mean.slice(), std: s.std.slice(), minStd: s.minStd };
  }

  /**
   * Sets the input statistics (per input: mean, standard deviation), or removes them (null).
   * A standard deviation below `minStd` is raised to it, so a near-constant input does not turn
   * a small change into a huge one; the default floor is 1 % of the root mean square of the
   * standard deviations given (1 if they are all 0). fit({ standardize: true }) calls this with
   * the training data's statistics; an Adapter can re-estimate them on unlabelled data.
   */
  setInputStats(mean: ArrayLike<number> | null, std?: ArrayLike<number>, options?: { minStd?: number }): void {
    this.#views();
    if (mean === null) {
      if (std !== undefined || options !== undefined)
        fail("OPTION", "setInputStats(null) removes the statistics and takes nothing else");
      this.#useStats(null);
      return;
    }
    const I = this.#inputs;
    const o = readOptions(options, ["minStd"], "setInputStats");
    const m = copyValues(mean, I, "setInputStats: mean");
    const s = copyValues(std, I, "setInputStats: std");
    let sq = 0;
    for (let i = 0; i < I; i++) {
      if (s[i] < 0) fail("OPTION", `setInputStats: std[${i}] is ${s[i]}, below 0`);
      sq += s[i] * s[i];
    }
    const rms = Math.sqrt(sq / I);
    const floor = f32Option(o.minStd, "setInputStats minStd", rms > 0 ? 0.01 * rms : 1, 0);
    if (!(floor > 0)) fail("OPTION", `setInputStats: minStd must be above 0, got ${floor}`);
    for (let i = 0; i < I; i++) s[i] = Math.max(s[i], floor);
    this.#useStats({ mean: m, std: s, minStd: Math.fround(floor) });
  }

  /** Switches standardisation on, off, or to other statistics; allocates before it changes anything. */
  #useStats(stats: InputStats | null): void {
    const on = stats !== null,
      was = this.#stats !== null;
    if (on !== was && this.#capacity > 0) {
      const core = this.#core,
        rows = this.#capacity * this.#inputs;
      let block: Block | null = null;
      if (on) {
        block = core.allocate(padFloats(rows));
        if (block === null)
          fail("MEMORY", `the ${core.name} core cannot allocate ${rows} floats for standardised inputs`);
      }
      this.#swapStd(block);
      this.#frame.views = {
        ...this.#frame.views,
        x: block === null ? (this.#xStaging as View) : core.view(block, 0, rows),
      };
    }
    this.#stats = stats;
  }

  /** Per output, the prior the diversity term pulls the mean prediction towards and the
   * balanced input statistics weigh by: the training label frequency fit() recorded. A copy;
   * null when unknown. */
  get prior(): Float32Array | null {
    this.#views();
    return this.#prior === null ? null : this.#prior.slice();
  }

  /** Sets the prior (per output, in [0, 1]), or forgets it (null). */
  setPrior(prior: ArrayLike<number> | null): void {
    this.#views();
    if (prior === null) {
      this.#prior = null;
      return;
    }
    const p = copyValues(prior, this.#outputs, "setPrior");
    for (let o = 0; o < p.length; o++)
      if (!(p[o] >= 0 && p[o] <= 1)) fail("OPTION", `setPrior: prior[${o}] is ${p[o]}, not in [0, 1]`);
    this.#prior = p;
  }

  /** The median per-sample entropy in bits (summed over the outputs) of the training data after
   * training, as fit() or recordSource() measured it; null when unknown. Adapter thresholds
   * given as `{ relative: k }` are k times this. */
  get sourceEntropy(): number | null {
    this.#views();
    return this.#sourceEntropy;
  }

  /** Sets the source entropy (bits, ≥ 0), or forgets it (null). */
  setSourceEntropy(bits: number | null): void {
    this.#views();
    this.#sourceEntropy = bits === null ? null : numberOption(bits, "setSourceEntropy", 0, 0, F32_MAX);
  }

  /**
   * Records what test-time adaptation uses of the training data, as fit() does at its end:
   * the source entropy (median per-sample entropy of the rows of x under the model as it is now)
   * and, with targets (rows × outputs), the prior (each output's mean target). For training
   * loops other than fit(); input statistics are set before training (setInputStats).
   */
  recordSource(x: Float32Array, options?: { targets?: Float32Array }): void {
    this.#views();
    const o = readOptions(options, ["targets"], "recordSource");
    if (!isFloat32Array(x)) fail("OPTION", "recordSource: x must be a Float32Array");
    const I = this.#inputs,
      O = this.#outputs;
    const rows = lengthOf(x) / I;
    if (rows === 0 || !Number.isInteger(rows))
      fail("SHAPE", `recordSource: x has ${lengthOf(x)} values, not a whole positive number of rows of ${I}`);
    let prior: Float32Array | null = null;
    if (o.targets !== undefined) {
      if (!isFloat32Array(o.targets)) fail("OPTION", "recordSource: targets must be a Float32Array");
      const t = plainView(o.targets);
      if (t.length !== rows * O)
        fail("SHAPE", `recordSource: targets has ${t.length} values, expected rows × outputs = ${rows * O}`);
      const sum = new Float64Array(O);
      for (let k = 0; k < t.length; k++) {
        if (!(t[k] >= 0 && t[k] <= 1)) fail("OPTION", `recordSource: targets[${k}] is ${t[k]}, not in [0, 1]`);
        sum[k % O] += t[k];
      }
      prior = Float32Array.from(sum, (v) => v / rows);
    }
    // Copied out first: x may be a view of this core's memory, which the calls below can move.
    const data = inCoreMemory(plainView(x)) ? plainView(x).slice() : plainView(x);
    const perSample = new Float64Array(rows);
    const chunk = Math.max(1, Math.min(rows, Math.floor(2 ** 16 / I)));
    for (let at = 0; at < rows; at += chunk) {
      const n = Math.min(chunk, rows - at);
      const units = this.entropy(data.subarray(at * I, (at + n) * I), { reduction: "none" });
      for (let k = 0; k < units.length; k++) perSample[at + Math.floor(k / O)] += units[k];
    }
    perSample.sort();
    const mid = rows >> 1;
    this.#sourceEntropy = rows % 2 === 1 ? perSample[mid] : (perSample[mid - 1] + perSample[mid]) / 2;
    if (prior !== null) this.#prior = prior;
  }

  /** W := W + G, G := 0: the layer, and so every output, is unchanged (W + G is formed once
   * per call either way). After training W and G together, merge before adapting G. */
  merge(): void {
    const v = this.#views();
    const w = v.w.f32(),
      g = v.g.f32();
    for (let k = 0; k < w.length; k++) w[k] += g[k];
    g.fill(0);
  }

  /**
   * A staging view of batch × inputs inside the core's memory. Fill it and pass it to
   * forward/entropy/gradients/step: nothing is copied. Valid until a later call needs a
   * larger batch (then a new staging area is used, and passing this one copies it).
   */
  input(batch: number): Float32Array {
    this.#views();
    const rows = sizeOption(batch, "batch");
    const retired = this.#reserve(rows);
    for (const b of retired) this.#core.release(b);
    const x = this.#xStaging as View;
    return this.#handOut(x, x.f32().subarray(0, rows * this.#inputs));
  }

  /**
   * Checks x, makes room, and stages it (no copy when x is the staging view). x and the targets
   * are measured by the intrinsic typed-array getters: no user code runs from here to the core
   * call (a subclass's getters could lie about them or call back into the package).
   */
  #stage(x: unknown, what: string): number {
    this.#views();
    if (!isFloat32Array(x)) fail("OPTION", `${what}: x must be a Float32Array`);
    const xLen = lengthOf(x);
    const batch = xLen / this.#inputs;
    if (xLen === 0 || !Number.isInteger(batch)) {
      fail("SHAPE", `${what}: x has ${xLen} values, not a whole positive number of rows of ${this.#inputs}`);
    }
    const spec = this.#spec;
    const t = spec.targets;
    const tLen = t === undefined ? 0 : lengthOf(t);
    const labelled = spec.labelledRows;
    if (labelled > batch) fail("SHAPE", `${what}: labelledRows is ${labelled}, more than the batch's ${batch} rows`);
    const targetRows = labelled >= 0 ? labelled : batch;
    if (t !== undefined && tLen !== targetRows * this.#outputs) {
      const rows = labelled >= 0 ? "labelledRows" : "batch";
      fail("SHAPE", `${what}: targets has ${tLen} values, expected ${rows} × outputs = ${targetRows * this.#outputs}`);
    }
    // The diversity term's prior and running marginal, into the core's (fixed) views before
    // growing memory below can detach the arrays they come from.
    if (spec.adaptFlags >= 0 && spec.diversity !== 0) this.#stageMarginal(what);
    // x and the targets may be views of this core's own memory (another model's staging or
    // results, this model's last z or d). Growing below can detach them (memory.grow, or a flush
    // that frees the quarantined blocks they view and hands them out again), so a call that
    // grows copies them out first (O(log n) times as a batch grows); the old staging and work
    // blocks, which they may view, are released only once they are staged.
    let xs: Float32Array = x,
      ts = t;
    if (batch > this.#capacity) {
      if (this.#core.holds(bufferOf(x))) xs = copyOf(x);
      if (t !== undefined && this.#core.holds(bufferOf(t))) ts = copyOf(t);
    }
    const retired = this.#reserve(batch);
    try {
      const frame = this.#frame;
      frame.useTargets = spec.crossEntropyWeight !== 0;
      // Targets first: a targets view of the x staging area (m.input) is read before x lands there.
      if (frame.useTargets) copyInto(frame.views.targets.f32(), ts as Float32Array);
      const stats = this.#stats;
      if (stats === null) copyInto(frame.views.x.f32(), xs);
      else standardizeInto(frame.views.x.f32(), plainView(xs), stats.mean, stats.std);
    } finally {
      for (const b of retired) this.#core.release(b);
    }
    const frame = this.#frame;
    frame.batch = batch;
    frame.entropyWeight = spec.entropyWeight;
    frame.crossEntropyWeight = spec.crossEntropyWeight;
    frame.scale = spec.reduction === "mean" ? 1 / batch : 1;
    frame.labelledRows = labelled >= 0 ? labelled : null;
    const adapting = spec.adaptFlags >= 0;
    frame.wantUnitEntropy = adapting;
    frame.wantUnitLoss = adapting;
    frame.adapt = null;
    if (adapting) {
      const a = this.#adapt;
      a.flags = spec.adaptFlags | (spec.reduction === "mean" ? AdaptFlag.Mean : 0);
      a.maxEntropy = spec.maxEntropy;
      a.diversity = spec.diversity;
      a.marginalMomentum = spec.marginalMomentum;
      frame.adapt = a;
    }
    return batch;
  }

  /**
   * One call into the core. When a WebAssembly core reports a non-finite result, the call is run
   * again by the JS kernels on the same memory: they sum in float64, so a float32 sum that
   * overflowed partway (while its result fits) does not fail the call, and every backend gives
   * the JS kernels' outcome (docs/api.md, "Overflow"). Calls that succeed pay nothing for this.
   */
  /** Copies the diversity term's prior (the option's, else the model's) and running marginal
   * (the option's, else the prior) into the core's views. */
  #stageMarginal(what: string): void {
    const O = this.#outputs,
      spec = this.#spec,
      v = this.#frame.views;
    const prior = spec.prior ?? this.#prior;
    if (prior === null)
      fail("OPTION", `${what}: adapt.diversity needs a prior: the model's (fit() records it; setPrior) or adapt.prior`);
    if (typeof prior !== "number" && prior.length !== O)
      fail("SHAPE", `${what}: adapt.prior has ${prior.length} values, expected outputs = ${O}`);
    const marginal = spec.marginal;
    if (marginal !== null && marginal.length !== O)
      fail("SHAPE", `${what}: adapt.marginal has ${marginal.length} values, expected outputs = ${O}`);
    const p = v.prior.f32();
    if (typeof prior === "number") p.fill(prior);
    else p.set(prior);
    v.marginal.f32().set(marginal ?? p);
  }

  #run(call: Call, rules: Rules | null, what: string, snapshot: RuleSnapshot | null = null): void {
    let status = this.#core.run(call, this.#frame, rules);
    if (status === Status.NonFiniteResult && this.#core.name !== "js") {
      status = rerunExactly(call, this.#frame, rules, snapshot);
    }
    checkStatus(status, what);
  }

  #rows(view: View, batch: number): Float32Array {
    return this.#handOut(view, view.f32().subarray(0, batch * this.#outputs));
  }

  /** z = x·(W+G)ᵀ + b and D = σ(z), each batch × outputs. */
  forward(x: Float32Array): ForwardResult {
    this.#spec.reduction = "mean";
    this.#spec.entropyWeight = 1;
    this.#spec.crossEntropyWeight = 0;
    this.#spec.targets = undefined;
    this.#spec.adaptFlags = -1;
    this.#spec.labelledRows = -1;
    const batch = this.#stage(x, "forward");
    this.#run(Call.Forward, null, "forward");
    const v = this.#frame.views;
    return { z: this.#rows(v.z, batch), d: this.#rows(v.d, batch) };
  }

  /** The entropy H in bits: per-sample sum over outputs, averaged ("mean"), added ("sum"),
   * or per unit ("none", a new batch × outputs array). */
  entropy(x: Float32Array, options: { reduction: "none" }): Float32Array;
  entropy(x: Float32Array, options?: { reduction?: "mean" | "sum" }): number;
  entropy(x: Float32Array, options?: { reduction?: Reduction }): number | Float32Array;
  entropy(x: Float32Array, options?: { reduction?: Reduction }): number | Float32Array {
    const o = readOptions(options, ["reduction"], "entropy");
    lossSpec({ reduction: o.reduction }, "entropy", this.#spec);
    const batch = this.#stage(x, "entropy");
    const none = this.#spec.reduction === "none";
    this.#frame.wantUnitEntropy = none;
    this.#run(Call.Objective, null, "entropy");
    return none ? this.#frame.views.unitEntropy.f32().slice(0, batch * this.#outputs) : this.#frame.results.entropy;
  }

  /** Gradients of the loss. With "none", loss and entropy are per unit and the gradients
   * are those of their sum. */
  gradients(x: Float32Array, options: LossOptions & { reduction: "none" }): GradientsResult<Float32Array>;
  gradients(x: Float32Array, options?: LossOptions & { reduction?: "mean" | "sum" }): GradientsResult<number>;
  gradients(x: Float32Array, options?: LossOptions): GradientsResult<number | Float32Array>;
  gradients(x: Float32Array, options?: LossOptions): GradientsResult<number | Float32Array> {
    lossSpec(options, "gradients", this.#spec);
    const batch = this.#stage(x, "gradients");
    const none = this.#spec.reduction === "none";
    const frame = this.#frame;
    if (none) {
      frame.wantUnitEntropy = true;
      frame.wantUnitLoss = true;
    }
    this.#run(Call.Gradients, null, "gradients");
    const v = frame.views;
    const dw = this.#handOut(v.dw, v.dw.f32());
    const dg = this.#handOut(v.dw, v.dw.f32().subarray(0));
    const db = this.#handOut(v.db, v.db.f32());
    if (none) {
      const n = batch * this.#outputs;
      return { loss: v.unitLoss.f32().slice(0, n), entropy: v.unitEntropy.f32().slice(0, n), dw, dg, db };
    }
    const r = frame.results;
    if (frame.adapt !== null) return { loss: r.loss, entropy: r.entropy, dw, dg, db, adapt: this.#adaptResult(batch) };
    return { loss: r.loss, entropy: r.entropy, dw, dg, db };
  }

  /** The adaptation metrics of the call that just ran. */
  #adaptResult(batch: number): AdaptStepResult {
    const v = this.#frame.views,
      r = this.#frame.results;
    const mean = this.#spec.reduction === "mean" ? r.entropy : r.entropy / batch;
    return new AdaptStepResult(
      r.loss,
      r.entropy,
      mean,
      batch,
      r.kept,
      r.diversityLoss,
      this.#handOut(v.positive, v.positive.f32()),
      this.#handOut(v.meanPrediction, v.meanPrediction.f32()),
      this.#handOut(v.sampleWeights, v.sampleWeights.f32()), // kept by the result, read by its getter
      this.#adapt.diversity === 0 ? null : this.#handOut(v.running, v.running.f32()),
    );
  }

  /** What optimizers need; not part of the public API. */
  get [internal](): ModelInternals {
    this.#views();
    return {
      core: this.#core,
      views: this.#frame.views,
      step: (x, options, rules, snapshot, what) => {
        lossSpec(options, what, this.#spec);
        if (this.#spec.reduction === "none") {
          fail("OPTION", `${what}: an update needs a scalar loss: use reduction "mean" or "sum"`);
        }
        const batch = this.#stage(x, what);
        this.#run(Call.Step, rules, what, snapshot);
        if (this.#frame.adapt !== null) return this.#adaptResult(batch);
        return { loss: this.#frame.results.loss, entropy: this.#frame.results.entropy };
      },
      adopt: (rules, blocks, owner) => {
        const o = this.#owned;
        if (rules !== null) o.rules.push(rules);
        o.blocks.push(...blocks);
        if (owner !== undefined && optimizerFinalizer !== null && o.core.name !== "js") {
          optimizerFinalizer.register(owner, releaser(o, rules, [...blocks]));
        }
      },
    };
  }

  /** A copy of this model (parameters only) on the same backend. */
  clone(): Model {
    const v = this.#views();
    const m = Model.from({
      inputs: this.#inputs,
      outputs: this.#outputs,
      backend: this.#core.name,
      threads: this.#frame.threads,
      w: v.w.f32(),
      g: v.g.f32(),
      b: v.b.f32(),
    });
    if (this.#stats !== null) m.#useStats(this.inputStats);
    m.#prior = this.prior;
    m.#sourceEntropy = this.#sourceEntropy;
    return m;
  }

  /**
   * The model in safetensors format: tensors "w", "g" (outputs × inputs) and "b" (outputs), F32
   * little-endian, and __metadata__ { format: "entrograd", version: "1", units: "bits" }. A model
   * with input statistics, a prior or a source entropy adds the tensors "input_mean", "input_std"
   * (inputs) and "prior" (outputs) and the metadata "input_min_std" and "source_entropy"
   * (decimal numbers), as version "2". Python reads it with `safetensors.numpy.load_file` /
   * `safetensors.torch.load_file`.
   */
  save(): Uint8Array {
    const v = this.#views();
    const I = this.#inputs,
      O = this.#outputs;
    const tensors = [
      { name: "w", shape: [O, I], data: v.w.f32() },
      { name: "g", shape: [O, I], data: v.g.f32() },
      { name: "b", shape: [O], data: v.b.f32() },
    ];
    const meta: Record<string, string> = { format: MODEL_FORMAT, version: MODEL_FILE_VERSION, units: "bits" };
    const stats = this.#stats;
    if (stats !== null) {
      tensors.push(
        { name: "input_mean", shape: [I], data: stats.mean },
        { name: "input_std", shape: [I], data: stats.std },
      );
      meta.input_min_std = String(stats.minStd);
    }
    if (this.#prior !== null) tensors.push({ name: "prior", shape: [O], data: this.#prior });
    if (this.#sourceEntropy !== null) meta.source_entropy = String(this.#sourceEntropy);
    if (tensors.length > 3 || this.#sourceEntropy !== null) meta.version = MODEL_FILE_VERSION_SOURCE;
    return writeSafetensors(tensors, meta);
  }

  /**
   * A model from a safetensors file: F32 tensors "w" [outputs, inputs], "b" [outputs] and,
   * optionally, "g" [outputs, inputs] (0 when absent), "input_mean" and "input_std" [inputs]
   * (together), "prior" [outputs]; no other tensors. Files from other writers load too; one whose
   * __metadata__ says format "entrograd" must have a version this package reads ("1", or "2"
   * with the optional parts) and units "bits". Anything else is EntrogradError FORMAT.
   */
  static load(bytes: Uint8Array, options?: { backend?: BackendName | "auto"; threads?: number }): Model {
    const o = readOptions(options, LOAD_KEYS, "Model.load");
    const backend = choiceOption(o.backend, "backend", BACKENDS, "auto");
    const threads = threadsOption(o.threads);
    const file = parseSafetensors(bytes, "Model.load");
    const bad: (why: string) => never = (why) => fail("FORMAT", `Model.load: not an entrograd model: ${why}`);
    const meta = file.metadata;
    if (meta !== null && meta.format === MODEL_FORMAT) {
      if (meta.version !== MODEL_FILE_VERSION && meta.version !== MODEL_FILE_VERSION_SOURCE)
        bad(`unsupported version ${JSON.stringify(meta.version)}`);
      if (meta.units !== undefined && meta.units !== "bits") bad(`units ${JSON.stringify(meta.units)}, not "bits"`);
    }
    for (const name of file.tensors.keys()) {
      if (!TENSORS.includes(name)) bad(`unexpected tensor ${JSON.stringify(name.slice(0, 64))}`);
    }
    const w = file.tensors.get("w") ?? bad('no tensor "w"');
    const b = file.tensors.get("b") ?? bad('no tensor "b"');
    const g = file.tensors.get("g");
    for (const [name, t] of file.tensors) if (t.dtype !== "F32") bad(`tensor ${name} is ${t.dtype}, not F32`);
    if (w.shape.length !== 2 || w.shape[0] < 1 || w.shape[1] < 1)
      bad(`w has shape [${w.shape.join(", ")}], not [outputs, inputs]`);
    const [outputs, inputs] = w.shape;
    if (g !== undefined && (g.shape.length !== 2 || g.shape[0] !== outputs || g.shape[1] !== inputs)) {
      bad(`g has shape [${g.shape.join(", ")}], expected [${outputs}, ${inputs}] like w`);
    }
    if (b.shape.length !== 1 || b.shape[0] !== outputs)
      bad(`b has shape [${b.shape.join(", ")}], expected [${outputs}]`);
    const vector = (name: string, length: number): Float32Array | null => {
      const t = file.tensors.get(name);
      if (t === undefined) return null;
      if (t.shape.length !== 1 || t.shape[0] !== length)
        bad(`${name} has shape [${t.shape.join(", ")}], expected [${length}]`);
      return readF32(file, t, name, "Model.load");
    };
    const mean = vector("input_mean", inputs),
      std = vector("input_std", inputs),
      prior = vector("prior", outputs);
    if ((mean === null) !== (std === null)) bad("input_mean and input_std come together");
    const number = (key: string): number | null => {
      const s = meta?.[key];
      if (s === undefined) return null;
      if (!DECIMAL.test(s)) bad(`${key} ${JSON.stringify(s.slice(0, 64))} is not a decimal number`);
      return Number(s);
    };
    let minStd = number("input_min_std");
    const sourceEntropy = number("source_entropy");
    if (sourceEntropy !== null && !(sourceEntropy >= 0 && sourceEntropy <= F32_MAX))
      bad(`source_entropy ${sourceEntropy} is not a number of bits`);
    if (std !== null) {
      minStd ??= std.reduce((a, v) => Math.min(a, v), Infinity);
      if (!(minStd > 0 && minStd <= F32_MAX && Math.fround(minStd) === minStd))
        bad(`input_min_std ${minStd} is not a positive float32 number`);
      for (let i = 0; i < inputs; i++)
        if (!(std[i] >= minStd)) bad(`input_std[${i}] is ${std[i]}, below input_min_std`);
    } else if (minStd !== null) bad("input_min_std without input statistics");
    if (prior !== null)
      for (let o = 0; o < outputs; o++)
        if (!(prior[o] >= 0 && prior[o] <= 1)) bad(`prior[${o}] is ${prior[o]}, not in [0, 1]`);
    const wv = readF32(file, w, "w", "Model.load");
    const gv = g === undefined ? undefined : readF32(file, g, "g", "Model.load");
    const bv = readF32(file, b, "b", "Model.load");
    // biome-ignore lint/complexity/noThisInStatic: the class it was called on (entrograd/js's Model runs js only)
    const m = new (modelClass(this))({ inputs, outputs, init: "zeros", backend, threads });
    const v = m.#views();
    v.w.f32().set(wv);
    if (gv !== undefined) v.g.f32().set(gv);
    v.b.f32().set(bv);
    if (mean !== null && std !== null) m.#stats = { mean, std, minStd: minStd as number };
    m.#prior = prior;
    m.#sourceEntropy = sourceEntropy;
    return m;
  }

  /** Frees the core memory now; later calls throw DISPOSED. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    finalizer?.unregister(this.#owned);
    releaseAll(this.#owned);
  }
}

// Symbol.dispose where the runtime has it, else the registered symbol TypeScript's
// down-levelled `using` looks up.
Object.defineProperty(Model.prototype, disposeSymbol, {
  value: function (this: Model): void {
    this.dispose();
  },
  writable: true,
  configurable: true,
});

/** A copy of a Float32Array on the JS heap (set() reads its elements: no user code). */
function copyOf(a: Float32Array): Float32Array {
  const c = new Float32Array(lengthOf(a));
  c.set(a);
  return c;
}

/**
 * dst = (src − mean)/std per input, in float32 arithmetic: the subtraction rounded to float32,
 * then the division (computed in float64 and rounded once, which gives float32's own quotient).
 * `src` is a plain view (its length is read).
 */
function standardizeInto(dst: Float32Array, src: Float32Array, mean: Float32Array, std: Float32Array): void {
  const I = mean.length,
    n = src.length;
  for (let at = 0; at < n; at += I)
    for (let i = 0; i < I; i++) dst[at + i] = Math.fround(src[at + i] - mean[i]) / std[i];
}

function copyInto(dst: Float32Array, src: Float32Array): void {
  // A staging view filled in place needs no copy (known by the intrinsic getters: a subclass
  // could claim to be the staging view and leave stale data there).
  if (bufferOf(src) === dst.buffer && byteOffsetOf(src) === dst.byteOffset) return;
  dst.set(src); // reads a typed array's own elements: no user code
}

/**
 * `want` numbers from an array-like (a typed array, an array, or an object with a length), each
 * read once and checked as a number, then as a float32 (1e39 would be stored as ±Infinity).
 */
function copyValues(value: unknown, want: number, what: string): Float32Array {
  if (typeof value !== "object" || value === null) fail("OPTION", `${what} must be an array of numbers`);
  const length = isTypedArray(value) ? lengthOf(value) : read(value, "length", what);
  if (typeof length !== "number") fail("OPTION", `${what} must be an array of numbers`);
  if (length !== want) fail("SHAPE", `${what} has ${length} values, expected ${want}`);
  const c = new Float32Array(want);
  for (let i = 0; i < want; i++) {
    let v: unknown;
    try {
      v = (value as ArrayLike<unknown>)[i];
    } catch (e) {
      throw foreign(e, `${what}[${i}]`);
    }
    if (typeof v !== "number" || !Number.isFinite(v)) fail("NON_FINITE", `${what}[${i}] is ${show(v)}`);
    c[i] = v;
    if (!Number.isFinite(c[i])) fail("NON_FINITE", `${what}[${i}] is ${v}, beyond float32`);
  }
  return c;
}
