// An arena: one shared WebAssembly.Memory with the threads module instantiated on it, here and
// in every worker, and the models that live in it (docs/threads.md).
//
// Views stay safe without detaching (issue 12, on shared memory). The one-thread cores let a
// block that views were lent out of (core.lend) wait in quarantine until memory.grow(0) has
// detached them (core/leases.ts). A shared memory's buffer is never detached, and counting the
// lent arrays (a FinalizationRegistry) would miss what users derive from them (a subarray, a new
// array over the buffer). So in an arena a block that views were lent out of is never given back
// to the allocator: released, it is set apart for good (other blocks are freed as usual), and
// what reuses that memory is the garbage collector, a whole arena at a time. When an arena has
// set apart enough (1 MiB, or an eighth of its size) it is retired: new models go to a new
// arena, and the retired one is dropped (here and in the workers) when its last block is
// released. Its memory is collected once no view of it is left: a kept view keeps its own
// memory alive, never another model's.

import type { Block, Call, Frame, View } from "../core/types.js";
import { type CoreExports, WasmCore } from "../core/wasm.js";

/** The threads module's exports (crate/src/bindings/threads.rs), with the memory it imports. */
export interface ThreadsExports extends CoreExports {
  __stack_pointer: WebAssembly.Global;
  control_floats(): number;
  threaded(args: number, call: number, control: number, ticket: number, helpers: number): number;
  work(control: number, ticket: number, budget: number): number;
  abandon(control: number): void;
}

/** What an arena needs from the pool that owns it. */
export interface ArenaHost {
  /** Runs a call split over the caller and up to `helpers` workers; its status. */
  call(arena: Arena, call: Call, args: number, frame: Frame): number;
  /** The arena is retired and empty: forget it here and in the workers. */
  drop(arena: Arena): void;
  /** The arena's last block was released (it may be empty for a while, or for good). */
  emptied(arena: Arena): void;
}

/** u32 indices of the fields TypeScript reads in a control block (crate/src/parallel/mod.rs,
 *  `Control`; crate/tests/parallel.rs checks them). */
export enum ControlU32 {
  Broken = 7,
  Helped = 8,
  Stalls = 9,
}

const RETIRE_BYTES = 2 ** 20;

export class Arena {
  /** Blocks allocated and not released. */
  live = 0;
  /** Bytes released: set apart for good. */
  setApart = 0;
  /** No new models come here; dropped when `live` reaches 0. */
  retired = false;
  /** A worker failed in a call here: later calls run on the caller alone. */
  broken = false;
  readonly core: ArenaCore;
  constructor(
    readonly id: number,
    readonly memory: WebAssembly.Memory,
    readonly exports: ThreadsExports,
    /** Byte address of the control block. */
    readonly control: number,
    private readonly host: ArenaHost,
  ) {
    this.core = new ArenaCore(this, exports);
  }

  #words = new Uint32Array(0);
  /** The control block's u32 words (made again when the memory has grown). */
  controlWords(): Uint32Array {
    const buffer = this.memory.buffer;
    if (this.#words.buffer !== buffer)
      this.#words = new Uint32Array(buffer, this.control, this.exports.control_floats());
    return this.#words;
  }

  allocated(): void {
    this.live++;
  }

  /** A block was released; `floats` of it are set apart (0: it was freed). */
  released(floats: number): void {
    this.live--;
    this.setApart += 4 * floats;
    if (!this.retired && this.setApart > Math.max(RETIRE_BYTES, this.memory.buffer.byteLength / 8)) this.retired = true;
    if (this.live > 0) return;
    if (this.retired) this.host.drop(this);
    this.host.emptied(this);
  }

  call(call: Call, args: number, frame: Frame): number {
    return this.host.call(this, call, args, frame);
  }
}

/** The core of the models in one arena: a WebAssembly core whose lent blocks are never reused
 *  and whose calls may be split over the workers. */
export class ArenaCore extends WasmCore {
  readonly #released = new WeakSet<Block>();
  /** Blocks a view was lent out of. */
  readonly #lent = new WeakSet<Block>();
  constructor(
    private readonly arena: Arena,
    exports: ThreadsExports,
  ) {
    super(exports);
  }

  override allocate(floats: number): Block | null {
    const block = super.allocate(floats);
    if (block !== null) this.arena.allocated();
    return block;
  }

  /** A block views were lent out of is set apart for good (see the header); others are freed. */
  override release(block: Block): void {
    if (this.#released.has(block)) return;
    this.#released.add(block);
    if (this.#lent.has(block)) this.arena.released(block.floats);
    else {
      this.exports.release(block.ptr, block.floats);
      this.arena.released(0);
    }
  }

  override lend(view: View, array: Float32Array): Float32Array {
    this.#lent.add((view as View & { block: Block }).block);
    return array;
  }

  /** The call on the classic export (this thread alone), or split by the pool. */
  protected override invoke(call: Call, args: number, frame: Frame): number {
    return this.arena.call(call, args, frame);
  }

  /** The one-thread export of the same call (bitwise the wasm-simd backend's). */
  alone(call: Call, args: number, frame: Frame): number {
    return super.invoke(call, args, frame);
  }
}
