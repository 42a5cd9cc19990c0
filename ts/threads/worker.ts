// The worker threads' program, as source text: each runtime starts it its own way (spawn.ts
// and ./node.ts), and bundlers leave a string alone (a function's source could gain helpers).
//
// A worker holds one instance of the threads module per shared memory ("arena", ./arena.ts), on
// that memory, with its own stack. It waits for a call: the caller writes the arena's id, then
// the call's ticket into the control words (./pool.ts) and wakes sleepers; the worker then enters
// the module (`work`), which takes part in the call's phases until it closes (crate/src/parallel).
// Between calls it spins on the ticket for a while (a training loop's next step comes within
// microseconds; waking a sleeping thread takes ~50 µs), then sleeps: with Atomics.waitAsync where
// the runtime has it, so messages (new arenas) still arrive, else Atomics.wait with a time-out.

/** Indices of the control words (an Int32Array over a SharedArrayBuffer). */
export enum Word {
  /** The ticket of the last call (0: none yet). */
  Ticket = 0,
  /** The arena of that call. */
  Arena = 1,
  /** Workers asleep (the caller wakes them only then: Atomics.notify costs when nobody waits). */
  Sleepers = 2,
  /** Bumped with every message the caller posts, so a spinning worker yields to receive it. */
  Mail = 3,
}
export const CONTROL_WORDS = 4;

/** Messages from the caller. */
export type ToWorker =
  | {
      type: "init";
      control: SharedArrayBuffer;
      module: WebAssembly.Module | Uint8Array;
      spinMs: number;
      budget: number;
    }
  | { type: "arena"; id: number; memory: WebAssembly.Memory; control: number; stackTop: number }
  | { type: "drop"; id: number };

/** Messages to the caller. */
export type FromWorker = { type: "ready" } | { type: "error"; message: string };

// `port` (post, on) comes from the prologue of each runtime.
export const BODY = `
let C, mod, spinMs = 0.05, budget = 65536, mail = 0;
const arenas = new Map();
const tick = () => new Promise((r) => setTimeout(r, 0));
const fail = (e) => port.post({ type: "error", message: String(e && e.stack || e) });
port.on((m) => {
  try {
    if (m.type === "init") {
      C = new Int32Array(m.control);
      mod = m.module instanceof WebAssembly.Module ? m.module : new WebAssembly.Module(m.module);
      spinMs = m.spinMs;
      budget = m.budget;
      port.post({ type: "ready" });
      loop().catch(fail);
    } else if (m.type === "arena") {
      const inst = new WebAssembly.Instance(mod, { env: { memory: m.memory } });
      inst.exports.__stack_pointer.value = m.stackTop;
      arenas.set(m.id, { x: inst.exports, control: m.control, top: m.stackTop });
    } else if (m.type === "drop") {
      arenas.delete(m.id);
    }
  } catch (e) {
    fail(e);
  }
});
async function loop() {
  const waitAsync = typeof Atomics.waitAsync === "function";
  let seen = Atomics.load(C, 0);
  for (;;) {
    let t = Atomics.load(C, 0), i = 0, t0 = 0;
    while (t === seen) {
      if ((++i & 1023) === 0) {
        if (Atomics.load(C, 3) !== mail) break;
        const now = performance.now();
        if (t0 === 0) t0 = now;
        else if (now - t0 > spinMs) break;
      }
      t = Atomics.load(C, 0);
    }
    if (t === seen) {
      if (Atomics.load(C, 3) !== mail) {
        mail = Atomics.load(C, 3);
        await tick();
        continue;
      }
      Atomics.add(C, 2, 1);
      if (waitAsync) {
        const w = Atomics.waitAsync(C, 0, seen);
        if (w.async) await w.value;
      } else {
        Atomics.wait(C, 0, seen, 20);
        await tick();
      }
      Atomics.sub(C, 2, 1);
      continue;
    }
    seen = t;
    const a = arenas.get(Atomics.load(C, 1));
    if (a === undefined || Atomics.load(C, 0) !== t) continue;
    try {
      a.x.work(a.control, t >>> 0, budget);
    } catch (e) {
      a.x.__stack_pointer.value = a.top;
      a.x.abandon(a.control);
      arenas.delete(Atomics.load(C, 1));
      fail(e);
    }
  }
}
`;

/** The program for a Web Worker (browsers, Deno, Bun), started from a blob: URL as a module. */
export const WEB_WORKER = `const port = { post: (m) => self.postMessage(m), on: (f) => { self.onmessage = (e) => f(e.data); } };
${BODY}`;
