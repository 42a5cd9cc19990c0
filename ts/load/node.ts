// Node, Deno and Bun (ESM and CJS): the .wasm files sit next to the bundle in dist/ and are
// read from disk. Only this file, of all the loaders, imports Node built-ins. When the
// package was bundled into a server's code (esbuild --platform=node, a serverless bundle), the
// files are not next to the bundle: then the copies inlined in JS are used (./inline.ts).

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { inlined } from "./inline.js";
import type { Locator, WasmSource } from "./loader.js";

const file = (simd: boolean): URL => new URL(simd ? "./entrograd-simd.wasm" : "./entrograd.wasm", import.meta.url);

/** file: URLs and paths are read from disk; any other URL is fetched. */
function read(source: URL | string): WasmSource | Promise<WasmSource> {
  if (source instanceof URL) return source.protocol === "file:" ? readFile(source) : fetch(source);
  if (/^file:/i.test(source)) return readFile(new URL(source));
  if (/^[a-z][a-z\d+.-]+:/i.test(source)) return fetch(source); // http:, https:, data:, blob:
  return readFile(source); // a path (two letters at least before ':', so C:\ stays a path)
}

export const nodeLocator: Locator = {
  locate: (simd) => readFile(file(simd)),
  fallback: inlined,
  locateSync: (simd) => readFileSync(file(simd)),
  eagerScalar: true,
  read,
};
