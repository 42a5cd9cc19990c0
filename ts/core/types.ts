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

export const enum Call {
  Forward = 0,
  Entropy = 1,
  Gradients = 2,
  Step = 3,
}

/** Options of one parameter's update (docs/core-abi.md, rule records). */
export interface RuleOptions {
  frozen: boolean;
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** Momentum buffer, or null when momentum is 0. */
  buf: View | null;
}

/** The three update rules (w, g, b) an optimizer keeps in its core. */
export interface Rules {
  set(param: number, rule: RuleOptions): void;
  ready(param: number): boolean;
  setReady(param: number, ready: boolean): void;
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
}

export class Frame {
  batch = 0;
  entropyWeight = 1;
  crossEntropyWeight = 0;
  scale = 1;
  useTargets = false;
  wantUnits = false;
  wantUnitLoss = false;
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
