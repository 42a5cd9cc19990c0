// A WebAssembly core (either build: wasm-simd or wasm). Blocks live in the module's linear
// memory; views re-check `memory.buffer` on every read, because memory.grow detaches the
// old ArrayBuffer and every view made over it.

import {
  type Call,
  MAX_FLOATS,
  type BackendName,
  type Block,
  type Core,
  type Frame,
  type RuleOptions,
  type Rules,
  type View,
} from "./types.js";

/** The raw exports of crate/src/bindings.rs (docs/core-abi.md). */
export interface CoreExports {
  memory: WebAssembly.Memory;
  allocate(floats: number): number;
  release(ptr: number, floats: number): void;
  simd(): number;
  pack_floats(batch: number, inputs: number, outputs: number): number;
  forward(args: number): number;
  entropy(args: number): number;
  gradients(args: number): number;
  step(args: number): number;
}

/** Symbol under which a view handed to users keeps its owner (e.g. the Model) alive. */
export const OWNER = Symbol("entrograd.owner");

class WasmView implements View {
  private cache = new Float32Array(0);
  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly ptr: number,
    readonly length: number,
  ) {}
  f32(): Float32Array {
    const buffer = this.memory.buffer;
    if (this.cache.buffer !== buffer) this.cache = new Float32Array(buffer, this.ptr, this.length);
    return this.cache;
  }
}

// Slots of the args block and of a rule record (docs/core-abi.md). The block a frame attaches
// holds the args block (32 slots) and, after it, the frame's adapt record (16 slots).
const ARGS_FLOATS = 32;
const RULE_SLOTS = 16;
const ADAPT_SLOTS = 16;

class Slots {
  private u = new Uint32Array(0);
  private f = new Float32Array(0);
  private d = new Float64Array(0);
  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly ptr: number,
    private readonly count: number,
  ) {}
  private fresh(): void {
    const buffer = this.memory.buffer;
    if (this.u.buffer !== buffer) {
      this.u = new Uint32Array(buffer, this.ptr, this.count);
      this.f = new Float32Array(buffer, this.ptr, this.count);
      this.d = new Float64Array(buffer, this.ptr, this.count >> 1);
    }
  }
  u32(): Uint32Array {
    this.fresh();
    return this.u;
  }
  f32(): Float32Array {
    this.fresh();
    return this.f;
  }
  f64(): Float64Array {
    this.fresh();
    return this.d;
  }
}

const KIND_CODES = { frozen: 0, sgd: 1, adam: 2 } as const;

class WasmRules implements Rules {
  maxGradNorm = 0;
  constructor(
    private readonly core: WasmCore,
    readonly block: Block,
    readonly slots: Slots,
  ) {}
  set(param: number, o: RuleOptions): void {
    const u = this.slots.u32(),
      f = this.slots.f32(),
      at = param * RULE_SLOTS;
    u[at] = KIND_CODES[o.kind];
    f[at + 1] = o.lr;
    f[at + 2] = o.weightDecay;
    f[at + 3] = o.momentum;
    f[at + 4] = o.dampening;
    u[at + 5] = o.nesterov ? 1 : 0;
    u[at + 6] = o.buf === null ? 0 : o.buf.ptr;
    f[at + 8] = o.oneMinusBeta1;
    f[at + 9] = o.oneMinusBeta2;
    f[at + 10] = o.eps;
    u[at + 11] = o.expAvg === null ? 0 : o.expAvg.ptr;
    u[at + 12] = o.expAvgSq === null ? 0 : o.expAvgSq.ptr;
  }
  ready(param: number): boolean {
    return this.slots.u32()[param * RULE_SLOTS + 7] !== 0;
  }
  setReady(param: number, ready: boolean): void {
    this.slots.u32()[param * RULE_SLOTS + 7] = ready ? 1 : 0;
  }
  steps(param: number): number {
    return this.slots.u32()[param * RULE_SLOTS + 13];
  }
  setSteps(param: number, steps: number): void {
    this.slots.u32()[param * RULE_SLOTS + 13] = steps;
  }
  release(): void {
    this.core.release(this.block);
  }
}

interface WasmFrameCache {
  args: Slots;
  adapt: Slots;
  block: Block;
}

export class WasmCore implements Core {
  readonly name: BackendName;
  private readonly calls: readonly ((args: number) => number)[];
  constructor(private readonly exports: CoreExports) {
    this.name = exports.simd() === 1 ? "wasm-simd" : "wasm";
    this.calls = [exports.forward, exports.entropy, exports.gradients, exports.step];
  }

  allocate(floats: number): Block | null {
    if (!(floats >= 0 && floats <= MAX_FLOATS)) return null;
    const ptr = this.exports.allocate(Math.max(floats, 1)) >>> 0;
    return ptr === 0 ? null : { ptr, floats: Math.max(floats, 1) };
  }

  release(block: Block): void {
    this.exports.release(block.ptr, block.floats);
  }

  view(block: Block, offset: number, length: number): View {
    return new WasmView(this.exports.memory, block.ptr + 4 * offset, length);
  }

  packFloats(batch: number, inputs: number, outputs: number): number {
    return this.exports.pack_floats(batch, inputs, outputs) >>> 0; // 2³²-1 when it cannot fit
  }

  holds(buffer: ArrayBufferLike): boolean {
    return buffer === this.exports.memory.buffer;
  }

  memoryBytes(): number {
    return this.exports.memory.buffer.byteLength;
  }

  createRules(): Rules | null {
    const block = this.allocate(3 * RULE_SLOTS);
    return block === null
      ? null
      : new WasmRules(this, block, new Slots(this.exports.memory, block.ptr, 3 * RULE_SLOTS));
  }

  attach(frame: Frame): boolean {
    if (frame.cache !== null) return true;
    const block = this.allocate(ARGS_FLOATS + ADAPT_SLOTS);
    if (block === null) return false;
    frame.cache = {
      args: new Slots(this.exports.memory, block.ptr, ARGS_FLOATS),
      adapt: new Slots(this.exports.memory, block.ptr + 4 * ARGS_FLOATS, ADAPT_SLOTS),
      block,
    } satisfies WasmFrameCache;
    return true;
  }

  detach(frame: Frame): void {
    const c = frame.cache as WasmFrameCache | null;
    if (c !== null) this.release(c.block);
    frame.cache = null;
  }

  run(call: Call, frame: Frame, rules: Rules | null): number {
    const cache = frame.cache as WasmFrameCache;
    const args = cache.args;
    const u = args.u32(),
      f = args.f32(),
      v = frame.views;
    u[0] = frame.batch;
    u[1] = frame.inputs;
    u[2] = frame.outputs;
    u[3] = v.x.ptr;
    u[4] = frame.useTargets ? v.targets.ptr : 0;
    u[5] = v.w.ptr;
    u[6] = v.g.ptr;
    u[7] = v.b.ptr;
    u[8] = 0; // not read (was wsum)
    u[9] = v.z.ptr;
    u[10] = v.d.ptr;
    u[11] = v.delta.ptr;
    u[12] = frame.wantUnits ? v.units.ptr : 0;
    u[13] = v.dw.ptr;
    u[14] = v.db.ptr;
    f[15] = frame.entropyWeight;
    f[16] = frame.crossEntropyWeight;
    f[17] = frame.scale;
    u[18] = rules === null ? 0 : (rules as WasmRules).block.ptr;
    u[19] = frame.wantUnitLoss ? v.unitLoss.ptr : 0;
    u[20] = v.pack.ptr;
    u[21] = v.pack.length;
    f[22] = rules === null ? 0 : rules.maxGradNorm;
    const a = frame.adapt;
    if (a !== null) {
      const ru = cache.adapt.u32(),
        rf = cache.adapt.f32();
      ru[0] = a.flags;
      rf[1] = a.maxEntropy;
      rf[2] = a.diversity;
      ru[3] = v.sampleWeights.ptr;
      ru[4] = v.positive.ptr;
      ru[5] = v.meanPrediction.ptr;
    }
    u[23] = a === null ? 0 : cache.adapt.ptr;
    const status = this.calls[call](args.ptr) >>> 0;
    const d = args.f64(); // re-read: the call may not grow memory, but never assume it
    frame.totals[0] = d[12];
    frame.totals[1] = d[13];
    if (a !== null) {
      a.kept = cache.adapt.u32()[6];
      a.diversityLoss = cache.adapt.f64()[4];
    }
    return status;
  }
}
