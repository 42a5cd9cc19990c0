// entrograd/js: the package without WebAssembly: the same API as the main entry, and an init()
// that has nothing to load. Its models run the TypeScript kernels (backend "js"). The
// package's js/package.json points Node's older resolution (node10) here too.

import type { BackendName } from "./core/types.js";

export * from "./api.js";

/** Nothing to load: resolves to "js". */
export async function init(): Promise<BackendName> {
  return "js";
}

export function initSync(): BackendName {
  return "js";
}
