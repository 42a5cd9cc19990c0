// Browsers (through Vite, webpack, esbuild, ...) and any other runtime without a node:fs: the
// .wasm file is fetched from next to this module. Each `new URL("./x.wasm", import.meta.url)`
// stays a literal so that Vite and webpack see it, copy the file into the build and rewrite the
// URL. A bundler that does not (esbuild, or an IIFE bundle without import.meta.url) leaves a
// URL that does not load: then the copy inlined in a separate module (base64) is used, which
// bundlers that split code only download in that case.

import type { Locator, WasmSource } from "./loader.js";

function simdUrl(): URL {
  return new URL("./entrograd-simd.wasm", import.meta.url);
}

function scalarUrl(): URL {
  return new URL("./entrograd.wasm", import.meta.url);
}

function decode(base64: string): Uint8Array {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export const webLocator: Locator = {
  // fetch() of the URL (instantiated while it streams in); wasm-bindgen's glue rejects a
  // response that is not ok, which sends the loader to the fallback.
  locate: (simd) => fetch(simd ? simdUrl() : scalarUrl()),
  fallback: async (simd): Promise<WasmSource> =>
    decode(
      simd
        ? (await import("../../pkg/simd/entrograd_core_bg.wasm?base64")).default
        : (await import("../../pkg/scalar/entrograd_core_bg.wasm?base64")).default,
    ),
  eagerScalar: false,
};
