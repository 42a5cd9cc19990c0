// The Model: one sigmoid layer z = x·(W+G)ᵀ + b, D = σ(z), whose parameters, gradients and
// scratch live in a core's memory (WebAssembly or JS) and are handed out as live views.

import { AdaptFlag } from "./core/abi.js";
import { coreFor, threads } from "./core/registry.js";
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
import { OWNER } from "./core/wasm.js";
import { Status } from "./core/abi.js";
import { checkStatus, fail, foreign, show } from "./errors.js";
import {
  bufferOf,
  byteOffsetOf,
  choiceOption,
  isFloat32Array,
  isTypedArray,
  lengthOf,
  lossSpec,
  newLossSpec,
  numberOption,
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

const disposeSymbol: symbol = (Symbol as unknown as { dispose?: symbol }).dispose ?? Symbol.for("Symbol.dispose");

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
  #work: Block | null = null;
  readonly #spec: LossSpec = newLossSpec();
  readonly #adapt: AdaptFrame = { flags: 0, maxEntropy: 0, diversity: 0 };

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
    const name = choiceOption(o.backend, "backend", BACKENDS, "auto");
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
    const m = new Model({
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
    const grads = this.#allocate(P + 3 * O);
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
   * O(log n) times. Staging blocks users may hold views of (m.input) are kept until dispose,
   * so such a view never points at memory another model reuses. The old work block is returned,
   * no longer owned: the caller releases it once nothing reads it any more (the batch being
   * staged may be a view of it: the last z or d).
   */
  #reserve(batch: number): Block | null {
    if (batch <= this.#capacity) return null;
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
    const X = padFloats(cap * inputs),
      Y = padFloats(cap * outputs),
      S = padFloats(cap),
      K = packOf(cap);
    const blocks = this.#owned.blocks;
    const retired = this.#work;
    if (retired !== null) blocks.splice(blocks.indexOf(retired), 1);
    blocks.push(staging, work);
    this.#work = work;
    this.#capacity = cap;
    const n = cap * outputs;
    const v = this.#frame.views;
    this.#frame.views = {
      ...v,
      x: core.view(staging, 0, cap * inputs),
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

  #views(): FrameViews {
    if (this.#disposed) fail("DISPOSED", "this model was disposed");
    return this.#frame.views;
  }

  /** A view handed to users keeps the model alive, so the GC never frees memory under it. */
  #handOut(a: Float32Array): Float32Array {
    if (this.#core.name !== "js" && !Object.hasOwn(a, OWNER)) {
      Object.defineProperty(a, OWNER, { value: this });
    }
    return a;
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
    return this.#handOut(this.#views().w.f32());
  }
  /** Live view of G (outputs × inputs). */
  get g(): Float32Array {
    return this.#handOut(this.#views().g.f32());
  }
  /** Live view of b (outputs). */
  get b(): Float32Array {
    return this.#handOut(this.#views().b.f32());
  }
  get disposed(): boolean {
    return this.#disposed;
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
    if (retired !== null) this.#core.release(retired);
    return this.#handOut(this.#frame.views.x.f32().subarray(0, rows * this.#inputs));
  }

  /**
   * Checks x, makes room, and stages it (no copy when x is the staging view). x and the targets
   * are measured by the intrinsic typed-array getters: no user code runs from here to the core
   * call (a subclass's getters could lie about them or call back into the package).
   */
  #stage(x: unknown, what: string): number {
    this.#views();
    if (!isFloat32Array(x)) fail("OPTION", `${what}: x must be a Float32Array`);
    const xLen = lengthOf(x),
      xAt = byteOffsetOf(x);
    const batch = xLen / this.#inputs;
    if (xLen === 0 || !Number.isInteger(batch)) {
      fail("SHAPE", `${what}: x has ${xLen} values, not a whole positive number of rows of ${this.#inputs}`);
    }
    const spec = this.#spec;
    const t = spec.targets;
    const tLen = t === undefined ? 0 : lengthOf(t),
      tAt = t === undefined ? 0 : byteOffsetOf(t);
    if (t !== undefined && tLen !== batch * this.#outputs) {
      fail("SHAPE", `${what}: targets has ${tLen} values, expected batch × outputs = ${batch * this.#outputs}`);
    }
    // x and the targets may be views of this core's own memory (another model's staging or
    // results, this model's last z or d). Growing below can detach them (memory.grow) and
    // retire the work block they view, so note where they lie first, re-view them after, and
    // release the old work block only once they are copied.
    const retired = this.#reserve(batch);
    try {
      const frame = this.#frame;
      const xs = frame.views.x.f32();
      frame.useTargets = spec.crossEntropyWeight !== 0;
      // Targets first: a targets view of the x staging area (m.input) is read before x lands there.
      if (frame.useTargets) copyInto(frame.views.targets.f32(), reattached(t as Float32Array, tAt, tLen, xs.buffer));
      copyInto(xs, reattached(x, xAt, xLen, xs.buffer));
    } finally {
      if (retired !== null) this.#core.release(retired);
    }
    const frame = this.#frame;
    frame.batch = batch;
    frame.entropyWeight = spec.entropyWeight;
    frame.crossEntropyWeight = spec.crossEntropyWeight;
    frame.scale = spec.reduction === "mean" ? 1 / batch : 1;
    const adapting = spec.adaptFlags >= 0;
    frame.wantUnitEntropy = adapting;
    frame.wantUnitLoss = adapting;
    frame.adapt = null;
    if (adapting) {
      const a = this.#adapt;
      a.flags = spec.adaptFlags | (spec.reduction === "mean" ? AdaptFlag.Mean : 0);
      a.maxEntropy = spec.maxEntropy;
      a.diversity = spec.diversity;
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
  #run(call: Call, rules: Rules | null, what: string, snapshot: RuleSnapshot | null = null): void {
    let status = this.#core.run(call, this.#frame, rules);
    if (status === Status.NonFiniteResult && this.#core.name !== "js") {
      status = rerunExactly(call, this.#frame, rules, snapshot);
    }
    checkStatus(status, what);
  }

  #rows(view: View, batch: number): Float32Array {
    return this.#handOut(view.f32().subarray(0, batch * this.#outputs));
  }

  /** z = x·(W+G)ᵀ + b and D = σ(z), each batch × outputs. */
  forward(x: Float32Array): ForwardResult {
    this.#spec.reduction = "mean";
    this.#spec.entropyWeight = 1;
    this.#spec.crossEntropyWeight = 0;
    this.#spec.targets = undefined;
    this.#spec.adaptFlags = -1;
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
    const dw = this.#handOut(v.dw.f32());
    const dg = this.#handOut(v.dw.f32().subarray(0));
    const db = this.#handOut(v.db.f32());
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
      this.#handOut(v.positive.f32()),
      this.#handOut(v.meanPrediction.f32()),
      v.sampleWeights.f32(),
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
    return Model.from({
      inputs: this.#inputs,
      outputs: this.#outputs,
      backend: this.#core.name,
      threads: this.#frame.threads,
      w: v.w.f32(),
      g: v.g.f32(),
      b: v.b.f32(),
    });
  }

  /**
   * The model in safetensors format: tensors "w", "g" (outputs × inputs) and "b" (outputs), F32
   * little-endian, and __metadata__ { format: "entrograd", version: "1", units: "bits" }.
   * Python reads it with `safetensors.numpy.load_file` / `safetensors.torch.load_file`.
   */
  save(): Uint8Array {
    const v = this.#views();
    const I = this.#inputs,
      O = this.#outputs;
    return writeSafetensors(
      [
        { name: "w", shape: [O, I], data: v.w.f32() },
        { name: "g", shape: [O, I], data: v.g.f32() },
        { name: "b", shape: [O], data: v.b.f32() },
      ],
      { format: MODEL_FORMAT, version: MODEL_FILE_VERSION, units: "bits" },
    );
  }

  /**
   * A model from a safetensors file: F32 tensors "w" [outputs, inputs], "b" [outputs] and,
   * optionally, "g" [outputs, inputs] (0 when absent); no other tensors. Files from other
   * writers load too; one whose __metadata__ says format "entrograd" must have a version this
   * package reads and units "bits". Anything else is EntrogradError FORMAT.
   */
  static load(bytes: Uint8Array, options?: { backend?: BackendName | "auto"; threads?: number }): Model {
    const o = readOptions(options, LOAD_KEYS, "Model.load");
    const backend = choiceOption(o.backend, "backend", BACKENDS, "auto");
    const threads = threadsOption(o.threads);
    const file = parseSafetensors(bytes, "Model.load");
    const bad: (why: string) => never = (why) => fail("FORMAT", `Model.load: not an entrograd model: ${why}`);
    const meta = file.metadata;
    if (meta !== null && meta.format === MODEL_FORMAT) {
      if (meta.version !== MODEL_FILE_VERSION) bad(`unsupported version ${JSON.stringify(meta.version)}`);
      if (meta.units !== undefined && meta.units !== "bits") bad(`units ${JSON.stringify(meta.units)}, not "bits"`);
    }
    for (const name of file.tensors.keys()) {
      if (name !== "w" && name !== "g" && name !== "b") bad(`unexpected tensor ${JSON.stringify(name.slice(0, 64))}`);
    }
    const w = file.tensors.get("w") ?? bad('no tensor "w"');
    const b = file.tensors.get("b") ?? bad('no tensor "b"');
    const g = file.tensors.get("g");
    for (const [name, t] of [
      ["w", w],
      ["g", g],
      ["b", b],
    ] as const) {
      if (t !== undefined && t.dtype !== "F32") bad(`tensor ${name} is ${t.dtype}, not F32`);
    }
    if (w.shape.length !== 2 || w.shape[0] < 1 || w.shape[1] < 1)
      bad(`w has shape [${w.shape.join(", ")}], not [outputs, inputs]`);
    const [outputs, inputs] = w.shape;
    if (g !== undefined && (g.shape.length !== 2 || g.shape[0] !== outputs || g.shape[1] !== inputs)) {
      bad(`g has shape [${g.shape.join(", ")}], expected [${outputs}, ${inputs}] like w`);
    }
    if (b.shape.length !== 1 || b.shape[0] !== outputs)
      bad(`b has shape [${b.shape.join(", ")}], expected [${outputs}]`);
    const wv = readF32(file, w, "w", "Model.load");
    const gv = g === undefined ? undefined : readF32(file, g, "g", "Model.load");
    const bv = readF32(file, b, "b", "Model.load");
    const m = new Model({ inputs, outputs, init: "zeros", backend, threads });
    const v = m.#views();
    v.w.f32().set(wv);
    if (gv !== undefined) v.g.f32().set(gv);
    v.b.f32().set(bv);
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

/** `a`, or, when growing memory detached it during this call (only this core's memory.grow can,
 *  so it viewed this core's memory), the same floats in the memory's new buffer. */
function reattached(a: Float32Array, offset: number, length: number, memory: ArrayBufferLike): Float32Array {
  return lengthOf(a) === length ? a : new Float32Array(memory, offset, length);
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
