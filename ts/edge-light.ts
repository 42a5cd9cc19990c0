// The Vercel Edge entry (edge-light): the SIMD build comes in by Vercel's `.wasm?module`
// import, a compiled WebAssembly.Module (the Edge runtime refuses to compile from bytes).
// init() and initSync() instantiate it; nothing happens at module load.

import simd from "./entrograd-simd.wasm?module";
import type { BackendName } from "./core/types.js";
import { initSyncWith, initWith, type InitOptions, type InitSyncOptions } from "./load/loader.js";
import { moduleLocator } from "./load/module.js";

export * from "./api.js";
export type { InitOptions, InitSyncOptions, SimdMode, WasmSource } from "./load/loader.js";

const locator = moduleLocator(simd);

/** Loads the WebAssembly cores; resolves to the backend new models get by default. */
export function init(options?: InitOptions): Promise<BackendName> {
  return initWith(locator, options);
}

/** Loads synchronously: from `{ wasm }` (a Module or bytes) or from the bundled module. */
export function initSync(options?: InitSyncOptions): BackendName {
  return initSyncWith(locator, options);
}
