// Edge runtimes (workerd, Vercel Edge): the entry imports the SIMD build as a compiled
// WebAssembly.Module, because these runtimes refuse to compile WebAssembly from bytes at run
// time. Only the SIMD build is bundled (their engines all have SIMD); the scalar build is
// loaded only when the user passes it: init({ wasm }) with "entrograd/entrograd.wasm".

import type { Locator } from "./loader.js";

export function moduleLocator(simd: WebAssembly.Module): Locator {
  return {
    locate: (wantSimd) => (wantSimd ? simd : null),
    locateSync: (wantSimd) => (wantSimd ? simd : null),
    eagerScalar: false,
  };
}
