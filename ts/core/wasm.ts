// A WebAssembly core (either build: wasm-simd or wasm). Blocks live in the module's linear
// memory; views re-check `memory.buffer` on every read, because memory.grow detaches the
// old ArrayBuffer and every view made over it (and the leases detach them on purpose before
// they reuse memory users' views held: core/leases.ts). The records the core reads and writes are laid
// out as ts/core/abi.ts says (generated from crate/src/abi): this file names no offset itself.

import {
  ADAPT_RECORD_ALIGN,
  ADAPT_RECORD_BYTES,
  AdaptRecordF32,
  AdaptRecordU32,
  ARGS_ALIGN,
  ARGS_BYTES,
  ArgsF32,
  ArgsU32,
  RESULTS_BYTES,
  ResultsF64,
  ResultsU32,
  RULE_RECORD_BYTES,
  RuleRecordF32,
  RuleRecordU32,
} from "./abi.js";
import { LeasedBlock, Leases } from "./leases.js";
import {
  type BackendName,
  type Block,
  type Call,
  type Core,
  type Frame,
  MAX_FLOATS,
  type RuleOptions,
  type Rules,
  type View,
} from "./types.js";

/** The raw exports of crate/src/bindings (docs/core-abi.md). */
export interface CoreExports {
  memory: WebAssembly.Memory;
  allocate(floats: number): number;
  release(ptr: number, floats: number): void;
  simd(): number;
  pack_floats(batch: number, inputs: number, outputs: number): number;
  forward(args: number): number;
  objective(args: number): number;
  gradients(args: number): number;
  step(args: number): number;
}

class WasmView implements View {
  private cache = new Float32Array(0);
  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly block: LeasedBlock,
    readonly ptr: number,
    readonly length: number,
  ) {}
  f32(): Float32Array {
    const buffer = this.memory.buffer;
    if (this.cache.buffer !== buffer) this.cache = new Float32Array(buffer, this.ptr, this.length);
    return this.cache;
  }
}

const alignUp = (n: number, align: number): number => Math.ceil(n / align) * align;

// The block a frame attaches: the results record first (the block is 16-byte aligned, as the
// results' f64 fields need), then the args block, then the adapt record.
const ARGS_AT = alignUp(RESULTS_BYTES, ARGS_ALIGN);
const ADAPT_AT = alignUp(ARGS_AT + ARGS_BYTES, ADAPT_RECORD_ALIGN);
const FRAME_FLOATS = alignUp(ADAPT_AT + ADAPT_RECORD_BYTES, 4) / 4;
/** 4-byte words of one rule record: record k starts at word k·RULE_WORDS. */
const RULE_WORDS = RULE_RECORD_BYTES / 4;

/** Typed arrays over one record (or several in a row), as abi.ts indexes them. */
class RecordView {
  private u = new Uint32Array(0);
  private f = new Float32Array(0);
  private d = new Float64Array(0);
  constructor(
    private readonly memory: WebAssembly.Memory,
    readonly ptr: number,
    private readonly bytes: number,
  ) {}
  private fresh(): void {
    const buffer = this.memory.buffer;
    if (this.u.buffer !== buffer) {
      this.u = new Uint32Array(buffer, this.ptr, this.bytes >> 2);
      this.f = new Float32Array(buffer, this.ptr, this.bytes >> 2);
      // Only 8-byte aligned records have f64 fields.
      if (this.ptr % 8 === 0) this.d = new Float64Array(buffer, this.ptr, this.bytes >> 3);
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

/** The three rule records (w, g, b), one after the other; only TypeScript writes them. */
class WasmRules implements Rules {
  maxGradNorm = 0;
  constructor(
    private readonly core: WasmCore,
    readonly block: Block,
    private readonly records: RecordView,
  ) {}
  set(param: number, o: RuleOptions): void {
    const u = this.records.u32(),
      f = this.records.f32(),
      at = param * RULE_WORDS;
    u[at + RuleRecordU32.kind] = o.kind;
    f[at + RuleRecordF32.lr] = o.lr;
    f[at + RuleRecordF32.weightDecay] = o.weightDecay;
    f[at + RuleRecordF32.momentum] = o.momentum;
    f[at + RuleRecordF32.dampening] = o.dampening;
    u[at + RuleRecordU32.nesterov] = o.nesterov ? 1 : 0;
    u[at + RuleRecordU32.buf] = o.buf === null ? 0 : o.buf.ptr;
    f[at + RuleRecordF32.oneMinusBeta1] = o.oneMinusBeta1;
    f[at + RuleRecordF32.oneMinusBeta2] = o.oneMinusBeta2;
    f[at + RuleRecordF32.eps] = o.eps;
    u[at + RuleRecordU32.expAvg] = o.expAvg === null ? 0 : o.expAvg.ptr;
    u[at + RuleRecordU32.expAvgSq] = o.expAvgSq === null ? 0 : o.expAvgSq.ptr;
  }
  setProgress(param: number, bufReady: boolean, steps: number): void {
    const u = this.records.u32(),
      at = param * RULE_WORDS;
    u[at + RuleRecordU32.bufReady] = bufReady ? 1 : 0;
    u[at + RuleRecordU32.step] = steps;
  }
  release(): void {
    this.core.release(this.block);
  }
}

interface WasmFrameCache {
  block: Block;
  results: RecordView;
  args: RecordView;
  adapt: RecordView;
}

/** Detaches every view of a non-shared memory (the JS API's grow(0)); true when it did. */
function detachViews(memory: WebAssembly.Memory): boolean {
  const old = memory.buffer;
  try {
    memory.grow(0);
  } catch {
    return false;
  }
  return old.byteLength === 0;
}

export class WasmCore implements Core {
  readonly name: BackendName;
  private readonly calls: readonly ((args: number) => number)[];
  /** Blocks views were handed out of wait here, when released, until no view can reach them. */
  private readonly leases: Leases;
  constructor(protected readonly exports: CoreExports) {
    this.name = exports.simd() === 1 ? "wasm-simd" : "wasm";
    this.calls = [exports.forward, exports.objective, exports.gradients, exports.step];
    const memory = exports.memory;
    // grow(0) detaches nothing in a shared memory: there the leases count handed-out arrays.
    const shared = typeof SharedArrayBuffer === "function" && memory.buffer instanceof SharedArrayBuffer;
    this.leases = new Leases((b) => exports.release(b.ptr, b.floats), shared ? null : () => detachViews(memory));
  }

  allocate(floats: number): Block | null {
    if (!(floats >= 0 && floats <= MAX_FLOATS)) return null;
    const n = Math.max(floats, 1);
    // What waits in quarantine comes back first, so it never makes memory grow. (This detaches
    // every view of the memory, as the memory.grow an allocation may do always could.)
    this.leases.flush();
    const ptr = this.exports.allocate(n) >>> 0;
    return ptr === 0 ? null : new LeasedBlock(ptr, n);
  }

  release(block: Block): void {
    this.leases.release(block as LeasedBlock);
  }

  view(block: Block, offset: number, length: number): View {
    return new WasmView(this.exports.memory, block as LeasedBlock, block.ptr + 4 * offset, length);
  }

  lend(view: View, array: Float32Array): Float32Array {
    return this.leases.lend((view as WasmView).block, array);
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
    const block = this.allocate(3 * RULE_WORDS);
    return block === null
      ? null
      : new WasmRules(this, block, new RecordView(this.exports.memory, block.ptr, 3 * RULE_RECORD_BYTES));
  }

  attach(frame: Frame): boolean {
    if (frame.cache !== null) return true;
    const block = this.allocate(FRAME_FLOATS);
    if (block === null) return false;
    const memory = this.exports.memory;
    frame.cache = {
      block,
      results: new RecordView(memory, block.ptr, RESULTS_BYTES),
      args: new RecordView(memory, block.ptr + ARGS_AT, ARGS_BYTES),
      adapt: new RecordView(memory, block.ptr + ADAPT_AT, ADAPT_RECORD_BYTES),
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
    u[ArgsU32.batch] = frame.batch;
    u[ArgsU32.inputs] = frame.inputs;
    u[ArgsU32.outputs] = frame.outputs;
    u[ArgsU32.x] = v.x.ptr;
    u[ArgsU32.targets] = frame.useTargets ? v.targets.ptr : 0;
    u[ArgsU32.w] = v.w.ptr;
    u[ArgsU32.g] = v.g.ptr;
    u[ArgsU32.b] = v.b.ptr;
    u[ArgsU32.z] = v.z.ptr;
    u[ArgsU32.d] = v.d.ptr;
    u[ArgsU32.delta] = v.delta.ptr;
    u[ArgsU32.unitEntropy] = frame.wantUnitEntropy ? v.unitEntropy.ptr : 0;
    u[ArgsU32.unitLoss] = frame.wantUnitLoss ? v.unitLoss.ptr : 0;
    u[ArgsU32.dw] = v.dw.ptr;
    u[ArgsU32.db] = v.db.ptr;
    f[ArgsF32.entropyWeight] = frame.entropyWeight;
    f[ArgsF32.crossEntropyWeight] = frame.crossEntropyWeight;
    f[ArgsF32.scale] = frame.scale;
    u[ArgsU32.pack] = v.pack.ptr;
    u[ArgsU32.packLen] = v.pack.length;
    u[ArgsU32.rules] = rules === null ? 0 : (rules as WasmRules).block.ptr;
    f[ArgsF32.maxGradNorm] = rules === null ? 0 : rules.maxGradNorm;
    u[ArgsU32.semiSupervised] = frame.labelledRows === null ? 0 : 1;
    u[ArgsU32.labelledRows] = frame.labelledRows ?? 0;
    const a = frame.adapt;
    if (a !== null) {
      const au = cache.adapt.u32(),
        af = cache.adapt.f32();
      au[AdaptRecordU32.flags] = a.flags;
      af[AdaptRecordF32.maxEntropy] = a.maxEntropy;
      af[AdaptRecordF32.diversity] = a.diversity;
      au[AdaptRecordU32.sampleWeights] = v.sampleWeights.ptr;
      au[AdaptRecordU32.positive] = v.positive.ptr;
      au[AdaptRecordU32.mean] = v.meanPrediction.ptr;
      au[AdaptRecordU32.prior] = v.prior.ptr;
      au[AdaptRecordU32.marginal] = v.marginal.ptr;
      af[AdaptRecordF32.marginalMomentum] = a.marginalMomentum;
      au[AdaptRecordU32.running] = v.running.ptr;
    }
    u[ArgsU32.adapt] = a === null ? 0 : cache.adapt.ptr;
    u[ArgsU32.results] = cache.results.ptr;
    const status = this.invoke(call, args.ptr, frame) >>> 0;
    // Re-read through fresh arrays: the call may not grow memory, but never assume it.
    const d = cache.results.f64(),
      r = frame.results;
    r.loss = d[ResultsF64.loss];
    r.entropy = d[ResultsF64.entropy];
    r.diversityLoss = d[ResultsF64.diversityLoss];
    r.kept = cache.results.u32()[ResultsU32.kept];
    return status;
  }

  /** Enters the core for `call` with the args block at `args` (the threads module splits it). */
  protected invoke(call: Call, args: number, _frame: Frame): number {
    return this.calls[call](args);
  }
}
