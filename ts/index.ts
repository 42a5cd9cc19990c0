// The Node entry (ESM and CJS; Deno and Bun take it too): the .wasm files are read from disk
// next to this file. init() loads both builds, so `backend: "wasm"` works next to "wasm-simd".

import type { BackendName } from "./core/types.js";
import { initSyncWith, initWith, type InitOptions, type InitSyncOptions, type ThreadsStarter } from "./load/loader.js";
import { nodeLocator } from "./load/node.js";

export * from "./api.js";

// The threads' code is a chunk of its own, loaded only when init() is asked for threads.
const startThreads: ThreadsStarter = (wanted) => import("./threads/entry-node.js").then((m) => m.start(wanted));
export type { InitOptions, InitSyncOptions, SimdMode, WasmSource } from "./load/loader.js";

/** Loads the WebAssembly cores; resolves to the backend new models get by default. */
export function init(options?: InitOptions): Promise<BackendName> {
  return initWith(nodeLocator, options, startThreads);
}

/** Loads synchronously: from `{ wasm }` (a Module or bytes) or from the package's files. */
export function initSync(options?: InitSyncOptions): BackendName {
  return initSyncWith(nodeLocator, options);
}
