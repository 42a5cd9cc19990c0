// Node (ESM and CJS): the .wasm files sit next to the bundle in dist/.

import { readFileSync } from "node:fs";
import type { Locator } from "./loader.js";

const file = (simd: boolean): URL => new URL(simd ? "./entrograd-simd.wasm" : "./entrograd.wasm", import.meta.url);

export const nodeLocator: Locator = {
  // Read synchronously: a few tens of KB from disk take well under a millisecond, while the
  // first fs/promises read loads Node's stream machinery (~5 ms of a cold init()).
  locate: async (simd) => readFileSync(file(simd)),
  locateSync: (simd) => readFileSync(file(simd)),
};
