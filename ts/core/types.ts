// What the Model needs from a backend: memory it can hand out as views, and the four calls
// of docs/core-abi.md. Two implementations: wasm.ts (either WebAssembly build) and js.ts.

export type BackendName = "wasm-simd" | "wasm" | "js";

/** One allocation in a core's memory; `ptr` is its byte address (0 in the JS core). */
export interface Block {
  readonly ptr: number;
  readonly floats: number;
}

/**
 * A range of floats inside a block. `f32()` always returns a valid view: the WebAssembly
 * core re-creates it when memory growth has replaced the buffer.
 */
export interface View {
  readonly ptr: number;
  readonly length: number;
  f32(): Float32Array;
}

export enum Call {
  Forward = 0,
  Entropy = 1,
  Gradients = 2,
  Step = 3,
}

/** What a rule does with its parameter: the rule record's kind (0, 1, 2). */
export type RuleKindName = "frozen" | "sgd" | "adam";

/** Options of one parameter's update (docs/core-abi.md, rule records). */
export interface RuleOptions {
  kind: RuleKindName;
  lr: number;
  /** SGD: L2 penalty added to the gradient. Adam: decoupled decay. */
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** SGD's momentum buffer, or null when momentum is 0. */
  buf: View | null;
  /** Adam: 1 − β₁, 1 − β₂, ε. */
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  eps: number;
  /** Adam's moments m and v, or null for other kinds. */
  expAvg: View | null;
  expAvgSq: View | null;
}

/** The three update rules (w, g, b) an optimizer keeps in its core, and its clipping. */
export interface Rules {
  /** Writes a rule record; leaves buf_ready and the step count as they are. */
  set(param: number, rule: RuleOptions): void;
  ready(param: number): boolean;
  setReady(param: number, ready: boolean): void;
  /** Adam: the updates this parameter has had (advanced by the core's step). */
  steps(param: number): number;
  setSteps(param: number, steps: number): void;
  /** Gradient-norm clipping threshold for the step (args slot 22); 0 = off. */
  maxGradNorm: number;
  release(): void;
}

/** The views one model's calls use, and what each call asks for. */
export interface FrameViews {
  x: View;
  targets: View;
  w: View;
  g: View;
  b: View;
  /** The core's scratch for one call: packed operands in WebAssembly, w + g in JS. */
  pack: View;
  z: View;
  d: View;
  delta: View;
  units: View;
  unitLoss: View;
  dw: View;
  db: View;
  /** The adaptation pass's outputs: per-sample weights (capacity), positive fractions and
   * mean predictions (outputs). */
  sampleWeights: View;
  positive: View;
  meanPrediction: View;
}

/** The adaptation pass of one call (docs/core-abi.md, "Adapt record"). */
export interface AdaptFrame {
  /** 1 filter, 2 EATA weights, 4 mean over the kept samples. */
  flags: number;
  maxEntropy: number;
  diversity: number;
  /** Written by gradients and step: samples kept, and the diversity term's value. */
  kept: number;
  diversityLoss: number;
}

export class Frame {
  batch = 0;
  entropyWeight = 1;
  crossEntropyWeight = 0;
  scale = 1;
  useTargets = false;
  wantUnits = false;
  wantUnitLoss = false;
  /** The adaptation pass for gradients and step, or null. */
  adapt: AdaptFrame | null = null;
  /** scale·Σloss and scale·Σentropy after entropy, gradients and step. */
  readonly totals = new Float64Array(2);
  /** Backend-private data tied to this frame's views (rebuilt when they change). */
  cache: unknown = null;
  constructor(
    readonly inputs: number,
    readonly outputs: number,
    public views: FrameViews,
  ) {}
}

export interface Core {
  readonly name: BackendName;
  /** Zero-filled floats, 16-byte aligned; null when the memory cannot grow. */
  allocate(floats: number): Block | null;
  release(block: Block): void;
  view(block: Block, offset: number, length: number): View;
  /** Floats of scratch (FrameViews.pack) a call on a batch of this size needs. */
  packFloats(batch: number, inputs: number, outputs: number): number;
  /** Size of the backend's WebAssembly memory in bytes (0 for JS). */
  memoryBytes(): number;
  /** True when `buffer` is this core's WebAssembly memory (whose growth detaches views of it). */
  holds(buffer: ArrayBufferLike): boolean;
  createRules(): Rules | null;
  /** Gives a frame what the core needs to run it (the args block); false when out of memory. */
  attach(frame: Frame): boolean;
  /** Frees what attach allocated. */
  detach(frame: Frame): void;
  /** Runs one call; returns a status (docs/core-abi.md). */
  run(call: Call, frame: Frame, rules: Rules | null): number;
}

/** Largest block either core will try, in floats: a wasm32 memory holds at most 4 GiB. */
export const MAX_FLOATS = 2 ** 30 - 1024;
