// The leases of ts/core/leases.ts on their own (issue 12): which released blocks go back to the
// allocator at once, which wait in quarantine, and what lets them go. Both modes: a memory that
// grow(0) detaches (every WebAssembly core today), and one that nothing detaches (a shared
// memory, for the threaded backend), where the FinalizationRegistry sees handed-out arrays go.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { LeasedBlock, Leases } from "../ts/core/leases";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** A real memory, its blocks (4 floats apart) and the leases over it, recording what is freed. */
function setup(detaches = true) {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const freed: number[] = [];
  const detach = () => {
    const old = memory.buffer;
    memory.grow(0);
    return detaches && old.byteLength === 0;
  };
  const leases = new Leases((b) => freed.push(b.ptr), detach);
  const block = (k: number) => new LeasedBlock(64 * k, 16);
  const view = (b: LeasedBlock) => new Float32Array(memory.buffer, b.ptr, b.floats);
  return { memory, freed, leases, block, view };
}

describe("leases over a memory that grow(0) detaches", () => {
  it("a block nothing was handed out of is freed at once; one a view was lent out of waits", () => {
    const { freed, leases, block, view } = setup();
    const quiet = block(1),
      lent = block(2);
    leases.lend(lent, view(lent));
    leases.release(quiet);
    leases.release(lent);
    expect(freed).toEqual([64]);
    expect(leases.stats).toEqual({ waiting: 1, flushes: 0, flushable: true });
  });

  it("a flush detaches the lent view and everything derived from it, then frees what waits", () => {
    const { memory, freed, leases, block, view } = setup();
    const b = block(3);
    const v = leases.lend(b, view(b));
    const derived = [v.subarray(2), new Uint8Array(v.buffer, v.byteOffset, 8), new Float32Array(memory.buffer)];
    leases.release(b);
    expect(freed).toEqual([]);
    expect(leases.flush()).toBe(true);
    expect(freed).toEqual([192]);
    expect([v.length, ...derived.map((d) => d.length)]).toEqual([0, 0, 0, 0]);
    expect(leases.stats).toEqual({ waiting: 0, flushes: 1, flushable: true });
    // Nothing waits: no flush, nothing detached.
    const kept = new Float32Array(memory.buffer, 0, 4);
    expect(leases.flush()).toBe(false);
    expect(kept.length).toBe(4);
  });

  it("a block lent before a flush and released after it is freed at once (its views are gone)", () => {
    const { freed, leases, block, view } = setup();
    const b = block(1),
      other = block(2);
    leases.lend(b, view(b));
    leases.lend(other, view(other));
    leases.release(other);
    leases.flush();
    leases.release(b);
    expect(freed).toEqual([128, 64]);
    // Lent again after the flush: it waits again.
    const c = block(4);
    leases.lend(c, view(c));
    leases.release(c);
    expect(freed).toEqual([128, 64]);
  });

  it("releasing twice frees once", () => {
    const { freed, leases, block, view } = setup();
    const a = block(1),
      b = block(2);
    leases.lend(b, view(b));
    leases.release(a);
    leases.release(a);
    leases.release(b);
    leases.flush();
    leases.release(b);
    expect(freed).toEqual([64, 128]);
  });

  it("where grow(0) does not detach, nothing waiting is freed, and nothing lent is ever freed", () => {
    const { freed, leases, block, view } = setup(false);
    const a = block(1),
      b = block(2),
      c = block(3);
    leases.lend(a, view(a));
    leases.lend(b, view(b));
    leases.release(a);
    expect(leases.flush()).toBe(false);
    expect(leases.stats.flushable).toBe(false);
    leases.release(b); // lent before the failed flush
    leases.lend(c, view(c)); // and after it
    leases.release(c);
    expect(leases.flush()).toBe(false);
    expect(freed).toEqual([]);
    expect(leases.stats.waiting).toBe(3);
  });
});

describe("leases over a memory nothing detaches (shared): counted arrays", () => {
  const settle = async () => {
    for (let k = 0; k < 6; k++) {
      gc();
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  it("a quarantined block is freed when the last array lent out of it is collected, not before", async () => {
    const { freed, block, view } = setup();
    const counting = new Leases((b) => freed.push(b.ptr), null);
    const b = block(5);
    let keep: Float32Array | null = view(b);
    counting.lend(b, keep);
    counting.lend(b, keep); // the same array twice counts once
    (() => {
      counting.lend(b, view(b)); // dropped at once
    })();
    counting.release(b);
    expect(counting.flush()).toBe(false);
    await settle();
    expect(freed, "one array still held").toEqual([]);
    expect(counting.stats).toEqual({ waiting: 1, flushes: 0, flushable: false });
    keep = null;
    await settle();
    expect(freed).toEqual([320]);
    expect(counting.stats.waiting).toBe(0);
    // A block whose arrays were all collected before its release is freed at once.
    const c = block(6);
    (() => {
      counting.lend(c, view(c));
    })();
    await settle();
    counting.release(c);
    expect(freed).toEqual([320, 384]);
  });
});
