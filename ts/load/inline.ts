// The modules inlined in JavaScript (base64), each in a chunk of its own that is imported only
// when the .wasm file itself cannot be loaded: a bundler that did not copy it (esbuild; any
// bundle of a Node server), a dev server that serves something else. Code-splitting bundlers
// leave the chunks out of the main bundle; the others inline them.

import type { WasmSource } from "./loader.js";

function decode(base64: string): Uint8Array {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

export async function inlined(simd: boolean): Promise<WasmSource> {
  return decode(
    simd
      ? (await import("../../pkg/simd/entrograd_core_bg.wasm?base64")).default
      : (await import("../../pkg/scalar/entrograd_core_bg.wasm?base64")).default,
  );
}
