// Node (ESM and CJS): the .wasm files sit next to the bundle in dist/.

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Locator } from "./loader.js";

const file = (simd: boolean): URL => new URL(simd ? "./entrograd-simd.wasm" : "./entrograd.wasm", import.meta.url);

export const nodeLocator: Locator = {
  locate: async (simd) => readFile(file(simd)),
  locateSync: (simd) => readFileSync(file(simd)),
};
