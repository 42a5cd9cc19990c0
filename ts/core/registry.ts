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

export function coreFor(name: BackendName | "auto"): Core {
  const core = cores.get(name === "auto" ? backend() : name);
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
