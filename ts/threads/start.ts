// Starting the threaded backend: init({ threads }) in the entries that can have threads (Node,
// Deno and Bun through the Node entry; browsers). The edge entries never import this file.

import { setThreaded } from "../core/registry.js";
import { Pool, type Spawn } from "./pool.js";

/** What an entry says about threads in its runtime. */
export interface Threading {
  /** The threads module's bytes (a rejection: this runtime has no copy). */
  bytes(): Promise<Uint8Array>;
  /** A worker starter, or why this runtime cannot start workers. */
  spawner(): Promise<Spawn | string>;
  /** Logical cores, for threads: "auto". */
  cores(): number;
}

/** threads: "auto" takes the cores, up to this many. */
export const AUTO_MAX = 8;

// The smallest module with a shared memory and an atomic instruction: whether this engine has
// the threads proposal (validate() compiles nothing big).
const THREADS_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0,
  26, 11,
]);

let running: Pool | null = null;

/** Why this runtime cannot share memory between threads, or null when it can. */
function sharedMemoryMissing(): string | null {
  if (typeof SharedArrayBuffer !== "function" || typeof Atomics !== "object")
    return typeof crossOriginIsolated === "boolean" && !crossOriginIsolated
      ? "this page is not cross-origin isolated (SharedArrayBuffer needs the COOP and COEP headers)"
      : "this runtime has no SharedArrayBuffer";
  try {
    if (!WebAssembly.validate(THREADS_PROBE)) return "this engine's WebAssembly has no threads (shared memory)";
  } catch {
    return "this engine's WebAssembly has no threads (shared memory)";
  }
  return null;
}

/**
 * Starts `wanted` − 1 workers (wanted: a whole number ≥ 1, or "auto"), once. Resolves when they
 * are up (or have failed); never rejects: what could not start is in threadInfo().
 */
export async function startThreads(wanted: number | "auto", threading: Threading): Promise<void> {
  const n = wanted === "auto" ? Math.max(1, Math.min(AUTO_MAX, threading.cores())) : wanted;
  if (running !== null && running.threads === n) return;
  running?.stop();
  running = null;
  if (n <= 1) {
    setThreaded(null, wanted === "auto" ? 'one core: threads: "auto" runs on the calling thread' : "threads: 1");
    return;
  }
  const missing = sharedMemoryMissing();
  if (missing !== null) {
    setThreaded(null, missing);
    return;
  }
  let pool: Pool;
  try {
    const spawn = await threading.spawner();
    if (typeof spawn === "string") {
      setThreaded(null, spawn);
      return;
    }
    const bytes = await threading.bytes();
    pool = new Pool(await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>), bytes, spawn);
  } catch (e) {
    setThreaded(null, `the threads module could not be loaded: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  const up = await pool.start(n - 1);
  if (up === 0) {
    pool.stop();
    setThreaded(null, `no worker started: ${pool.lastError ?? "time-out"}`);
    return;
  }
  running = pool;
  setThreaded(
    {
      threads: 1 + up,
      core: () => pool.core(),
      stop: () => {
        pool.stop();
        if (running === pool) running = null;
      },
      info: () => pool.info(),
    },
    up < n - 1 ? `${n} asked for, ${1 + up} started: ${pool.lastError ?? "time-out"}` : `${1 + up} threads`,
  );
}
