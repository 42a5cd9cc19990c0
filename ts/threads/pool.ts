// The worker pool: threads − 1 workers, the arenas they share with the calling thread, and the
// choice, call by call, of how a call runs (docs/threads.md).
//
// * Below a size (THRESHOLD, measured: docs/threads.md) a call runs the one-thread export on
//   the calling thread: handing work to another thread costs more than such a call.
// * Above it the call runs the split drivers (crate/src/parallel/split.rs), whose chunks the
//   caller and any worker that joins claim. Their results do not depend on who runs the chunks,
//   so the pool may run a call with fewer helpers (none yet ready, one failed, a busy core)
//   without changing a bit of it.
// * A busy core: a worker that the OS does not schedule holds up only the chunk it claimed, but
//   that can still cost more than the work it took. So the pool times each shape both ways now
//   and then and runs it with helpers only while that is faster (Tuning).
// * Workers are woken through a few shared words (worker.ts): the caller writes the arena, then
//   the call's ticket, and notifies only when one sleeps. Workers end with stop(), or, a while
//   after the last block of every arena is released, until a model needs them again; Node's are
//   unref'd, so a process never waits for them.

import type { Call, Frame } from "../core/types.js";
import { Arena, type ArenaCore, type ArenaHost, ControlU32, type ThreadsExports } from "./arena.js";
import { CONTROL_WORDS, type FromWorker, type ToWorker, Word } from "./worker.js";

/** One started worker, whatever the runtime. */
export interface WorkerHandle {
  post(message: ToWorker): void;
  /** Messages and errors from the worker. */
  listen(onMessage: (m: FromWorker) => void, onError: (e: unknown) => void): void;
  /** The worker is up: from now on it must not keep the process alive (Node, Deno, Bun). While
   *  it starts it does, so that a process awaiting init() does not end. */
  unref(): void;
  terminate(): void;
}

export type Spawn = () => WorkerHandle;

/** A started worker and its stack in each arena (top addresses). */
interface Worker {
  handle: WorkerHandle;
  stacks: Map<Arena, number>;
  up: boolean;
}

/**
 * Multiply-adds of one GEMM (batch × inputs × outputs) from which a call is split over threads,
 * per call (forward, objective, gradients, step). Below it a call runs on the calling thread
 * alone, bitwise as the wasm-simd backend. Measured (bench/threshold.mjs): docs/threads.md,
 * "Small work stays on one thread".
 */
export const THRESHOLD: readonly number[] = [1 << 18, 1 << 18, 1 << 18, 1 << 18];

/** For the measurement of THRESHOLD (bench/threshold.mjs): a number there, set before
 *  init({ threads }), replaces it for every call. Not an API. */
const SPLIT_FROM = Symbol.for("entrograd.threads.splitFrom");

/** Floats of stack each worker gets in each arena (128 KiB, as the calling thread's). */
const STACK_FLOATS = 1 << 15;
/** How long an idle worker spins on the ticket before it sleeps, in ms. */
const SPIN_MS = 0.1;
/** Spins a worker waits inside a call for the next phase before it leaves (crate: `work`). */
const BUDGET = 1 << 16;
/** A stack of an ended worker is given to another this long after (ms): terminate() stops a
 *  thread soon, not at once. */
const STACK_REUSE_MS = 1000;
/** Workers end this long after the last block of every arena was released (ms). */
const IDLE_MS = 2000;
/** A shared memory's maximum, in pages: 4 GiB, else less where the engine refuses that. */
const MAXIMA = [65536, 16384, 4096];
/** Pages the threads module needs at first (scripts/build-wasm.sh: --initial-memory). */
const INITIAL_PAGES = 16;

/** Calls of a shape that are not timed (warm-up). */
const WARM_UP = 64;

/**
 * When a shape runs with helpers: timed both ways now and then (a busy core makes helpers slow).
 * The first WARM_UP calls are not timed. The other way is tried after 4 calls, then every
 * `interval` calls (not counting retries after a wake-up); the interval doubles (to
 * 256) each time a probe confirms the choice and drops back to 8 when it flips, so a settled
 * shape pays for one slower call in 256, and helpers that turn slow are dropped at once.
 */
export class Tuning {
  team = 0;
  solo = 0;
  calls = 0;
  interval = 8;
  /** Calls until the next probe: the first after 4. */
  untilProbe = 4;
  /** Runs with helpers unless that was measured slower. */
  useTeam = true;
  /** The next call runs with helpers again: the last one had to wake a sleeping worker. */
  again = false;
  retried = false;
  /** Whether the next call is a probe of the other way. */
  probe(): boolean {
    this.calls++;
    if (this.again) {
      this.again = false;
      return !this.useTeam;
    }
    // Counted in calls that are not such retries: a probe due on one would be lost (every
    // other call is a retry while each call wakes the worker, and the probes fell on them all).
    if (--this.untilProbe > 0) return false;
    this.untilProbe = this.interval;
    return true;
  }
  /** A call's time; `woke`: it had to wake a worker first. Workers sleep after 0.1 ms without a
   *  call, so a call with helpers after a pause, or a probe while a shape runs alone, pays a
   *  ~50 µs wake-up that a loop of calls with helpers does not: left out (helpers would never
   *  come back, and models used in turns would drop them), and the next call runs with helpers
   *  again, once, to be timed awake. When that call has to wake the worker too, waking is
   *  what helpers cost now (a busy core keeps the worker from its spin: measured, nearly every
   *  (256, 64, 128) step woke it, and left untimed the pool kept helpers at 0.6x one thread),
   *  so it is timed. */
  record(team: boolean, ms: number, woke = false): void {
    if (team && woke && !this.retried) {
      this.again = true;
      this.retried = true;
      return;
    }
    this.retried = false;
    // A moving average whose step is capped at twice the estimate: a core that stays busy
    // raises it call after call, while one call held up once (the OS ran something else for a
    // time slice, a collection) moves it by at most a quarter instead of flipping the choice;
    // measured: (784, 10, 256) steps fell back to one thread for seconds at a time after such
    // calls, 1.1-1.2x two threads instead of 1.55-1.6x.
    // The first calls of a shape only warm up: a fresh model's first calls ran 1-5 ms at
    // (256, 64, 128), then 0.3 ms, against 0.1-0.2 ms after (the engine compiles the module's
    // optimised code in the background), and, timed, set the choice for thousands of calls.
    if (this.calls <= WARM_UP) return;
    if (team) this.team = this.team === 0 ? ms : 0.75 * this.team + 0.25 * Math.min(ms, 2 * this.team);
    else this.solo = this.solo === 0 ? ms : 0.75 * this.solo + 0.25 * Math.min(ms, 2 * this.solo);
    if (this.team === 0 || this.solo === 0) return;
    // Decided after every call (a core that turns busy shows in the calls with helpers at once),
    // with hysteresis: helpers must be clearly faster to come back.
    const useTeam = this.team < (this.useTeam ? 1 : 0.9) * this.solo;
    if (useTeam !== this.useTeam) this.interval = this.untilProbe = 8;
    else if (team !== this.useTeam) this.interval = Math.min(256, 2 * this.interval); // a probe confirmed it
    this.useTeam = useTeam;
  }
}

const now: () => number =
  typeof performance === "object" && typeof performance.now === "function" ? () => performance.now() : () => Date.now();

export class Pool implements ArenaHost {
  readonly #control = new Int32Array(new SharedArrayBuffer(4 * CONTROL_WORDS));
  #workers: Worker[] = [];
  #ready = 0;
  #ticket = 0;
  #nextArena = 1;
  readonly #arenas = new Map<number, Arena>();
  #current: Arena | null = null;
  /** Stacks of ended workers, per arena, and when they ended. */
  readonly #freeStacks = new Map<Arena, { top: number; at: number }[]>();
  readonly #tuning = new Map<string, Tuning>();
  #idle: ReturnType<typeof setTimeout> | null = null;
  /** Workers wanted (threads − 1); 0 after stop(). */
  #wanted = 0;
  /** The last error a worker reported. */
  lastError: string | null = null;
  /** Calls split so far, and the chunks of them workers ran. */
  #split = 0;
  #helped = 0;

  readonly #threshold: readonly number[];

  constructor(
    private readonly module: WebAssembly.Module,
    private readonly bytes: Uint8Array,
    private readonly spawn: Spawn,
  ) {
    const from = (globalThis as Record<symbol, unknown>)[SPLIT_FROM];
    this.#threshold = typeof from === "number" ? THRESHOLD.map(() => from) : THRESHOLD;
  }

  /** Threads in use: the calling thread and the workers wanted. */
  get threads(): number {
    return 1 + this.#wanted;
  }

  /** Workers running, and the arenas held (and their bytes). */
  info(): { workers: number; memories: number; memoryBytes: number; splitCalls: number; helperChunks: number } {
    let memoryBytes = 0;
    for (const a of this.#arenas.values()) memoryBytes += a.memory.buffer.byteLength;
    return {
      workers: this.#ready,
      memories: this.#arenas.size,
      memoryBytes,
      splitCalls: this.#split,
      helperChunks: this.#helped,
    };
  }

  /** Workers that have started and can take part. */
  get ready(): number {
    return this.#ready;
  }

  /** Starts workers up to `workers`; resolves to how many are up (those that did not come up
   *  within `timeoutMs` are ended). */
  async start(workers: number, timeoutMs = 10_000): Promise<number> {
    this.#wanted = workers;
    await this.#spawn(timeoutMs);
    this.#wanted = this.#workers.length;
    return this.#ready;
  }

  #spawn(timeoutMs: number): Promise<unknown> {
    const started: Promise<unknown>[] = [];
    while (this.#workers.length < this.#wanted) {
      let handle: WorkerHandle;
      try {
        handle = this.spawn();
      } catch (e) {
        this.lastError = String(e);
        break;
      }
      const worker: Worker = { handle, stacks: new Map(), up: false };
      this.#workers.push(worker);
      started.push(
        new Promise<void>((resolve) => {
          const gone = () => {
            if (!worker.up) this.#end(worker);
            resolve();
          };
          const timer = setTimeout(gone, timeoutMs);
          handle.listen(
            (m) => {
              if (m.type === "ready") {
                clearTimeout(timer);
                if (this.#workers.includes(worker)) {
                  worker.up = true;
                  this.#ready++;
                }
                handle.unref();
                resolve();
              } else this.lastError = m.message;
            },
            (e) => {
              this.lastError = String(e);
              clearTimeout(timer);
              gone();
            },
          );
        }),
      );
      handle.post({
        type: "init",
        control: this.#control.buffer as SharedArrayBuffer,
        module: this.bytes,
        spinMs: SPIN_MS,
        budget: BUDGET,
      });
      for (const arena of this.#arenas.values()) this.#introduce(arena, worker);
    }
    return Promise.all(started);
  }

  /** Ends every worker now; models keep working on the calling thread alone. */
  stop(): void {
    this.#wanted = 0;
    this.#terminate();
  }

  #terminate(): void {
    for (const w of [...this.#workers]) this.#end(w);
    if (this.#idle !== null) clearTimeout(this.#idle);
    this.#idle = null;
  }

  /** Ends one worker; its stacks are reused only a while later (it may still be winding down). */
  #end(worker: Worker): void {
    const k = this.#workers.indexOf(worker);
    if (k < 0) return;
    this.#workers.splice(k, 1);
    if (worker.up) this.#ready--;
    worker.handle.terminate();
    const at = now();
    for (const [arena, top] of worker.stacks) this.#freeStacks.get(arena)?.push({ top, at });
  }

  /** The core new threaded models get (a new arena when there is none, or it is retired);
   *  null when no shared memory can be made. */
  core(): ArenaCore | null {
    if (this.#current === null || this.#current.retired) this.#current = this.#newArena();
    if (this.#current !== null && this.#workers.length < this.#wanted) void this.#spawn(10_000);
    if (this.#idle !== null) {
      clearTimeout(this.#idle);
      this.#idle = null;
    }
    return this.#current?.core ?? null;
  }

  #newArena(): Arena | null {
    let memory: WebAssembly.Memory | null = null;
    for (const maximum of MAXIMA) {
      try {
        memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum, shared: true });
        break;
      } catch {
        // a smaller maximum, where the engine will not reserve 4 GiB
      }
    }
    if (memory === null) return null;
    let exports: ThreadsExports;
    try {
      const instance = new WebAssembly.Instance(this.module, { env: { memory } });
      exports = Object.assign({ memory }, instance.exports) as unknown as ThreadsExports;
    } catch (e) {
      this.lastError = String(e);
      return null;
    }
    const control = exports.allocate(exports.control_floats()) >>> 0;
    if (control === 0) return null;
    const arena = new Arena(this.#nextArena++, memory, exports, control, this);
    this.#arenas.set(arena.id, arena);
    this.#freeStacks.set(arena, []);
    for (const w of this.#workers) this.#introduce(arena, w);
    return arena;
  }

  /** Sends a worker the arena, with a stack of its own in it. */
  #introduce(arena: Arena, worker: Worker): void {
    const free = this.#freeStacks.get(arena) as { top: number; at: number }[];
    const k = free.findIndex((s) => now() - s.at > STACK_REUSE_MS);
    let top: number;
    if (k >= 0) top = free.splice(k, 1)[0].top;
    else {
      const at = arena.exports.allocate(STACK_FLOATS) >>> 0;
      if (at === 0) return; // out of memory: that worker sits this arena out
      top = at + 4 * STACK_FLOATS;
    }
    worker.stacks.set(arena, top);
    worker.handle.post({ type: "arena", id: arena.id, memory: arena.memory, control: arena.control, stackTop: top });
    Atomics.add(this.#control, Word.Mail, 1);
  }

  drop(arena: Arena): void {
    if (!this.#arenas.delete(arena.id)) return;
    this.#freeStacks.delete(arena);
    if (this.#current === arena) this.#current = null;
    for (const w of this.#workers) {
      w.stacks.delete(arena);
      w.handle.post({ type: "drop", id: arena.id });
    }
    Atomics.add(this.#control, Word.Mail, 1);
  }

  /** When no arena holds a block any more, the workers end a while later (a loop that makes and
   *  disposes models keeps them; the next model starts them again). */
  emptied(_arena: Arena): void {
    if (this.#idle !== null || this.#workers.length === 0) return;
    for (const a of this.#arenas.values()) if (a.live > 0) return;
    this.#idle = setTimeout(() => {
      this.#idle = null;
      for (const a of this.#arenas.values()) if (a.live > 0) return;
      this.#terminate(); // #wanted stays: a new model starts them again
    }, IDLE_MS);
    (this.#idle as { unref?: () => void }).unref?.();
  }

  call(arena: Arena, call: Call, args: number, frame: Frame): number {
    const work = frame.batch * frame.inputs * frame.outputs;
    if (work < this.#threshold[call]) return arena.core.alone(call, args, frame);
    const helpers = arena.broken ? 0 : Math.min(frame.threads - 1, this.#ready);
    this.#ticket = (this.#ticket + 1) >>> 0 || 1;
    const ticket = this.#ticket;
    this.#split++;
    if (helpers === 0) return arena.exports.threaded(args, call, arena.control, ticket, 0);
    const key = `${call} ${frame.batch} ${frame.inputs} ${frame.outputs} ${helpers}`;
    let tuning = this.#tuning.get(key);
    if (tuning === undefined) {
      if (this.#tuning.size > 256) this.#tuning.clear();
      tuning = new Tuning();
      this.#tuning.set(key, tuning);
    }
    const team = tuning.probe() !== tuning.useTeam;
    const t0 = now();
    let status: number;
    let woke = false;
    if (team) {
      const c = this.#control;
      Atomics.store(c, Word.Arena, arena.id);
      Atomics.store(c, Word.Ticket, ticket | 0);
      woke = Atomics.load(c, Word.Sleepers) > 0;
      if (woke) Atomics.notify(c, Word.Ticket);
      status = arena.exports.threaded(args, call, arena.control, ticket, helpers);
      const words = arena.controlWords();
      this.#helped += words[ControlU32.Helped];
      if (words[ControlU32.Broken] !== 0) arena.broken = true;
    } else {
      status = arena.exports.threaded(args, call, arena.control, ticket, 0);
    }
    tuning.record(team, now() - t0, woke);
    return status;
  }
}
