// What the Model needs from a backend: memory it can hand out as views, and the four calls
// of docs/core-abi.md. Two implementations: wasm.ts (either WebAssembly build) and js-core.ts
// (the kernels of ts/kernels/ on the JS heap).

import { RuleKind } from "./abi.js";

export type BackendName = "wasm-simd" | "wasm" | "js";

/** Floats rounded up to a multiple of 4, so every array placed after them starts 16-byte aligned. */
export const padFloats = (n: number): number => Math.ceil(n / 4) * 4;

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

/** The core's four calls, each doing what the one before does and more. */
export enum Call {
  Forward = 0,
  Objective = 1,
  Gradients = 2,
  Step = 3,
}

/**
 * One parameter's update rule (docs/core-abi.md, `RuleRecord`) without its counters, with its
 * buffers as `B`: views of a core's memory in the optimizers' options, Float32Arrays in the
 * TypeScript kernels.
 */
export interface RuleOf<B> {
  kind: RuleKind;
  lr: number;
  /** SGD: L2 penalty added to the gradient. Adam: decoupled decay θ·(1 − lr·λ). */
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** SGD's momentum buffer (as long as the parameter), or null when momentum is 0. */
  buf: B | null;
  /** Adam: 1 − β₁, 1 − β₂, ε. */
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  eps: number;
  /** Adam's moments m and v (as long as the parameter), or null for other kinds. */
  expAvg: B | null;
  expAvgSq: B | null;
}

/** What an optimizer writes into its core for one parameter (`Rules.set`). */
export type RuleOptions = RuleOf<View>;

/** A frozen rule, every field at its neutral value (Adam's at PyTorch's defaults): what the
 *  cores start from, and what rules of the other kinds spread and fill in. */
export const FROZEN_RULE: Readonly<RuleOf<never>> = {
  kind: RuleKind.Frozen,
  lr: 0,
  weightDecay: 0,
  momentum: 0,
  dampening: 0,
  nesterov: false,
  buf: null,
  oneMinusBeta1: 0.1,
  oneMinusBeta2: 0.001,
  eps: 1e-8,
  expAvg: null,
  expAvgSq: null,
};

/**
 * The three update rules (w, g, b) an optimizer keeps in its core, and its clipping. Written
 * only by the optimizer: the core reads them and never writes them back.
 */
/** What an optimizer last wrote into its rule records: each parameter's options and counters
 *  (the JS kernels rerun a step from it; see core/exact.ts). */
export interface RuleSnapshot {
  readonly options: readonly RuleOptions[];
  readonly progress: readonly { readonly ready: boolean; readonly steps: number }[];
}

export interface Rules {
  /** Writes a rule's options; leaves its counters as they are. */
  set(param: number, rule: RuleOptions): void;
  /** Writes a rule's counters, which the optimizer advances after each successful step: SGD's
   * momentum buffer holds a value; Adam's updates so far. */
  setProgress(param: number, bufReady: boolean, steps: number): void;
  /** Gradient-norm clipping threshold for the step (`Args.max_grad_norm`); 0 = off. */
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
  /** Each unit's entropy in bits. */
  unitEntropy: View;
  unitLoss: View;
  dw: View;
  db: View;
  /** The adaptation pass's outputs: per-sample weights (capacity), positive fractions and
   * mean predictions (outputs). */
  sampleWeights: View;
  positive: View;
  meanPrediction: View;
  /** The diversity term's (outputs each): the prior and the running marginal before the batch
   * (read), and the running marginal with it (written). */
  prior: View;
  marginal: View;
  running: View;
}

/** The adaptation pass of one call (docs/core-abi.md, `AdaptRecord`). */
export interface AdaptFrame {
  /** `AdaptFlag` bits. */
  flags: number;
  maxEntropy: number;
  diversity: number;
  /** β of the running marginal. */
  marginalMomentum: number;
}

/** What objective, gradients and step return besides their arrays (the `Results` record). */
export interface FrameResults {
  /** scale·Σloss, or the adaptation loss. */
  loss: number;
  /** scale·Σentropy (bits). */
  entropy: number;
  /** The adaptation pass's samples kept and diversity term. */
  kept: number;
  diversityLoss: number;
}

/** One model's calls: what they ask for (written by the model) and their results (by the core). */
export class Frame {
  batch = 0;
  entropyWeight = 1;
  crossEntropyWeight = 0;
  scale = 1;
  useTargets = false;
  wantUnitEntropy = false;
  wantUnitLoss = false;
  /** Semi-supervised rows: how many, from the first, are labelled (cross-entropy alone; the
   * rest entropy alone); null: every row has both terms. */
  labelledRows: number | null = null;
  /** The adaptation pass for gradients and step, or null. */
  adapt: AdaptFrame | null = null;
  /** Written by the core after objective, gradients and step. */
  readonly results: FrameResults = { loss: Number.NaN, entropy: Number.NaN, kept: 0, diversityLoss: 0 };
  /** Threads the model's calls may use (the threads module; 1 elsewhere). */
  threads = 1;
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
  /** Gives a block back. A block a view was lent out of waits (ts/core/leases.ts) until no
   *  view of it can reach the memory any more. Releasing a block twice does nothing. */
  release(block: Block): void;
  view(block: Block, offset: number, length: number): View;
  /** `array`, a view of `view`'s floats, is handed to a user, who may keep it past the block's
   *  release; returns it. */
  lend(view: View, array: Float32Array): Float32Array;
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
