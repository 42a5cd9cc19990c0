// Which cores exist in this process. The JS core is always here; the loader adds the
// WebAssembly ones when init() or initSync() has instantiated them.

import { fail } from "../errors.js";
import { jsCore } from "./js-core.js";
import type { BackendName, Core } from "./types.js";

const cores = new Map<BackendName, Core>([["js", jsCore]]);

export function registerCore(core: Core): void {
  cores.set(core.name, core);
}

/** "wasm-simd" | "wasm" | "js": what a new Model gets by default. */
export function backend(): BackendName {
  return cores.has("wasm-simd") ? "wasm-simd" : cores.has("wasm") ? "wasm" : "js";
}

/** The threaded backend (ts/threads/), when init({ threads }) started one. */
export interface Threaded {
  /** Threads in use: the calling thread and the workers. */
  readonly threads: number;
  /** The core of a new threaded model; null when no shared memory can be made. */
  core(): Core | null;
  stop(): void;
  /** Workers running, the shared memories the package holds (and their bytes), the calls split
   *  and the chunks of them workers ran. */
  info(): { workers: number; memories: number; memoryBytes: number; splitCalls: number; helperChunks: number };
}

let threaded: Threaded | null = null;
let threadsWhy = "init() was not asked for threads";

/** Registers the threaded backend (null: none), and why there are the threads there are. */
export function setThreaded(t: Threaded | null, why: string): void {
  threaded = t;
  threadsWhy = why;
}

/** Threads in use: 1 where none could start (or none were asked for). */
export function threads(): number {
  return threaded?.threads ?? 1;
}

/** What init() did about threads. */
export interface ThreadInfo {
  /** threads(): the threads a model may use. */
  threads: number;
  /** Why there are that many (what could not start, or "2 threads"). */
  reason: string;
  /** Workers running now (they end a while after the last threaded model, and start again
   *  with the next). */
  workers: number;
  /** Shared memories the package holds, and their size in bytes. */
  memories: number;
  memoryBytes: number;
  /** Calls split over threads so far (above the size where that pays), and the chunks of their
   *  work that workers ran (the rest ran on the calling thread). */
  splitCalls: number;
  helperChunks: number;
}

/** What init() did about threads, and what runs now. */
export function threadInfo(): ThreadInfo {
  const now = threaded?.info() ?? { workers: 0, memories: 0, memoryBytes: 0, splitCalls: 0, helperChunks: 0 };
  return { threads: threads(), reason: threadsWhy, ...now };
}

/** Ends the worker threads now; threaded models keep working on the calling thread alone (the
 *  same results). A later init({ threads }) starts them again. */
export function stopThreads(): void {
  threaded?.stop();
  setThreaded(null, "stopThreads() ended them");
}

/** The core of a model on `name` that may use `n` threads: the threaded backend's when n > 1
 *  and the model is on wasm-simd (the threads module is a SIMD build). */
export function coreFor(name: BackendName | "auto", n = 1): Core {
  const resolved = name === "auto" ? backend() : name;
  if (n > 1 && resolved === "wasm-simd" && threaded !== null) {
    const core = threaded.core();
    if (core !== null) return core;
  }
  const core = cores.get(resolved);
  if (core === undefined) {
    fail("NOT_READY", `backend "${name}" is not loaded: await init() first (or use backend: "js")`);
  }
  return core;
}

export function hasCore(name: BackendName): boolean {
  return cores.has(name);
}

/** True when `a` views some core's WebAssembly memory: growing that memory (any allocation, by
 *  any model on that core) detaches it, so code that allocates before reading it copies it. */
export function inCoreMemory(a: ArrayBufferView): boolean {
  for (const core of cores.values()) if (core.holds(a.buffer)) return true;
  return false;
}

/** Byte size of a backend's WebAssembly memory (0 for "js" or a backend not loaded). */
export function memoryBytes(name: BackendName = backend()): number {
  return cores.get(name)?.memoryBytes() ?? 0;
}
