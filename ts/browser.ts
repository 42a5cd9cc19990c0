// The browser entry (and the default for runtimes without a node:fs): init() fetches the one
// build it needs from next to this file; bundlers copy it (ts/load/web.ts says what happens
// when one does not). The scalar build is fetched only when SIMD is missing or fails.

import type { BackendName } from "./core/types.js";
import { initSyncWith, initWith, type InitOptions, type InitSyncOptions, type ThreadsStarter } from "./load/loader.js";
import { webLocator } from "./load/web.js";

export * from "./api.js";

// The threads' code is a chunk of its own, loaded only when init() is asked for threads.
const startThreads: ThreadsStarter = (wanted) => import("./threads/entry-web.js").then((m) => m.start(wanted));
export type { InitOptions, InitSyncOptions, SimdMode, WasmSource } from "./load/loader.js";

/** Loads the WebAssembly cores; resolves to the backend new models get by default. */
export function init(options?: InitOptions): Promise<BackendName> {
  return initWith(webLocator, options, startThreads);
}

/** Loads synchronously from `{ wasm }` (a Module or bytes); without it, use init(). */
export function initSync(options?: InitSyncOptions): BackendName {
  return initSyncWith(webLocator, options);
}
