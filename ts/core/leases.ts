// Memory lent to users (issue 12). The Model hands out Float32Arrays over a core's memory (m.w,
// m.input(), forward()'s z...) that users may keep after the model is disposed or collected, or
// after a larger batch moved its scratch. Whatever a kept view does then, it must never read or
// write memory that another model, optimizer or the allocator uses. So a block a view was
// handed out of is not given back to the allocator when it is released: it waits in quarantine.
//
// Where the memory can be detached (a non-shared WebAssembly.Memory: `memory.grow(0)` detaches
// its ArrayBuffer and so every view over it, per the JS API), a flush detaches every view at
// once and frees the whole quarantine. That covers views the user derived (subarray(), a new
// array over `.buffer`) as well as the ones handed out, which counting handed-out arrays with a
// FinalizationRegistry could not: the parent can be collected while its subarray lives. It costs
// one store per hand-out and nothing per step. The core flushes before each allocation while
// anything waits: the quarantine never makes memory grow (flat in a synchronous loop, where no
// FinalizationRegistry callback can run, and without FinalizationRegistry at all), and views are
// detached only by what could always detach them, an allocation (memory.grow).
//
// Where nothing can detach the views (a shared memory, for the threaded backend to come), the
// handed-out arrays are counted instead and a block leaves quarantine when the
// FinalizationRegistry has seen the last of them (without FinalizationRegistry it never does).

import type { Block } from "./types.js";

const LIVE = 0,
  QUARANTINED = 1,
  FREED = 2;

/** One allocation. A fresh object each time, so nothing about an earlier block at the same
 *  address (a late FinalizationRegistry callback) can reach it. */
export class LeasedBlock implements Block {
  /** The flush epoch in which a view of this block was last handed out (-1: never). */
  lentIn = -1;
  /** Handed-out arrays not yet collected (counting mode only). */
  lent = 0;
  state = LIVE;
  constructor(
    readonly ptr: number,
    readonly floats: number,
  ) {}
}

export class Leases {
  #epoch = 0;
  readonly #quarantine = new Set<LeasedBlock>();
  #flushes = 0;
  /** Detaches every view of the memory; false when it did not (nothing is freed then). */
  #detach: (() => boolean) | null;
  /** Counting mode: which arrays are registered, and the registry that sees them collected. */
  readonly #registered: WeakSet<Float32Array> | null = null;
  readonly #registry: FinalizationRegistry<LeasedBlock> | null = null;

  /**
   * @param free gives a block back to the allocator.
   * @param detach detaches every view over the memory and says whether it did; null where the
   *   memory cannot be detached (shared memory): handed-out arrays are counted then.
   */
  constructor(
    private readonly free: (block: LeasedBlock) => void,
    detach: (() => boolean) | null,
  ) {
    this.#detach = detach;
    if (detach === null && typeof FinalizationRegistry === "function") {
      this.#registered = new WeakSet();
      this.#registry = new FinalizationRegistry((block) => this.#collected(block));
    }
  }

  /** `array` (a view of `block`) is handed to a user; returns it. */
  lend(block: LeasedBlock, array: Float32Array): Float32Array {
    if (this.#detach !== null) {
      block.lentIn = this.#epoch;
    } else if (this.#registered === null) {
      block.lent = Infinity; // nothing can tell when the user lets go of it
    } else if (!this.#registered.has(array)) {
      this.#registered.add(array);
      block.lent++;
      this.#registry?.register(array, block);
    }
    return array;
  }

  /** The block's owner is done with it: freed now if no view of it is out, else quarantined. */
  release(block: LeasedBlock): void {
    if (block.state !== LIVE) return;
    // lentIn: handed out since the last flush; lent: counted arrays not yet collected.
    const out = block.lentIn === this.#epoch || block.lent > 0;
    if (!out) {
      block.state = FREED;
      this.free(block);
      return;
    }
    block.state = QUARANTINED;
    this.#quarantine.add(block);
  }

  /**
   * When anything waits: detaches every view of the memory (handed out or not: the core's own
   * views re-create theirs) and frees the quarantine. False when nothing was freed.
   */
  flush(): boolean {
    if (this.#quarantine.size === 0 || this.#detach === null) return false;
    if (!this.#detach()) {
      // The runtime did not detach (not what the JS API says): never try again. What waits
      // stays quarantined, and so does every block handed out since the last flush (lentIn)
      // or from now on (lend counts it without a registry: it never comes back).
      this.#detach = null;
      return false;
    }
    this.#epoch++;
    this.#flushes++;
    const blocks = [...this.#quarantine];
    this.#quarantine.clear();
    for (const b of blocks) {
      b.state = FREED;
      this.free(b);
    }
    return true;
  }

  #collected(block: LeasedBlock): void {
    if (--block.lent > 0 || block.state !== QUARANTINED) return;
    this.#quarantine.delete(block);
    block.state = FREED;
    this.free(block);
  }

  /** Blocks waiting, flushes so far, and whether the memory can be flushed (tests). */
  get stats(): { waiting: number; flushes: number; flushable: boolean } {
    return { waiting: this.#quarantine.size, flushes: this.#flushes, flushable: this.#detach !== null };
  }
}
