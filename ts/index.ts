// The Node entry (ESM and CJS): finds the .wasm files next to itself.

import { initSyncWith, initWith, type InitOptions, type SimdMode } from "./load/loader.js";
import { nodeLocator } from "./load/node.js";
import type { BackendName } from "./core/types.js";

export * from "./api.js";
export type { InitOptions, SimdMode, WasmSource } from "./load/loader.js";

/** Loads the WebAssembly cores; resolves to the backend new models get by default. */
export function init(options?: InitOptions): Promise<BackendName> {
  return initWith(nodeLocator, options);
}

/** Loads synchronously: from `{ wasm }` (a Module or bytes) or, in Node, from the package's files. */
export function initSync(options?: { wasm?: WebAssembly.Module | BufferSource; simd?: SimdMode }): BackendName {
  return initSyncWith(nodeLocator, options);
}
