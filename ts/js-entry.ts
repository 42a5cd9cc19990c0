// entrograd/js: the package without WebAssembly: the same API as the main entry, and an init()
// that has nothing to load. Its models run the TypeScript kernels (backend "js"). The
// package's js/package.json points Node's older resolution (node10) here too.

import type { BackendName } from "./core/types.js";
import { Model as AnyBackendModel, ONLY_BACKEND } from "./model.js";

export * from "./api.js";

/** The main entry's Model on the js backend always, whatever the main entry's init() loaded
 *  (another backend asked for is OPTION). */
export class Model extends AnyBackendModel {
  static readonly [ONLY_BACKEND]: BackendName = "js";
}

/** Nothing to load: resolves to "js". */
export async function init(): Promise<BackendName> {
  return "js";
}

export function initSync(): BackendName {
  return "js";
}
