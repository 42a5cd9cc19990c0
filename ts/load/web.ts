// Browsers (through Vite, webpack, esbuild, ...) and any other runtime without a node:fs: the
// .wasm file is fetched from next to this module. Each `new URL("./x.wasm", import.meta.url)`
// stays a literal so that Vite and webpack see it, copy the file into the build and rewrite the
// URL. A bundler that does not (esbuild, or an IIFE bundle without import.meta.url) leaves a
// URL that does not load: then the copy inlined in JS is used (./inline.ts).

import { inlined } from "./inline.js";
import type { Locator, WasmSource } from "./loader.js";

function simdUrl(): URL {
  return new URL("./entrograd-simd.wasm", import.meta.url);
}

function scalarUrl(): URL {
  return new URL("./entrograd.wasm", import.meta.url);
}

// WebAssembly's magic number and version 1: "\0asm", 1, 0, 0, 0.
const isWasm = (b: Uint8Array): boolean => b.length >= 8 && [0, 97, 115, 109, 1, 0, 0, 0].every((v, i) => b[i] === v);

/**
 * The response itself when it is served as application/wasm (then compiled while it streams
 * in); else its bytes if they are a module; else an error, which sends the loader to the
 * fallback. (A dev server answers a missing file with its index.html: Vite's does.)
 */
async function fetchWasm(url: URL): Promise<WasmSource> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetching ${url.href}: ${response.status} ${response.statusText}`);
  const type = response.headers.get("content-type") ?? "";
  if (/^application\/wasm\b/i.test(type)) return response;
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (!isWasm(bytes)) throw new Error(`${url.href} is not a WebAssembly module (served as "${type}")`);
  return bytes;
}

export const webLocator: Locator = {
  locate: (simd) => fetchWasm(simd ? simdUrl() : scalarUrl()),
  fallback: inlined,
  eagerScalar: false,
};
