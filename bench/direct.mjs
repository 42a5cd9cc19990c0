// The core's `step` export called directly, without the TypeScript API: a fresh instance of the
// SIMD module, arrays allocated with its own allocator, one args block and three SGD rule records
// written once. Timing it beside the API's `opt.step` shows what the API costs per call (the
// issue's "per-call overhead": option parsing, staging, filling the args block, reading the
// results). The record layout comes from ts/core/abi.ts, which is generated from the crate's
// records, so this call uses exactly the ABI the package uses.

import { readFileSync } from "node:fs";

/**
 * The generated layout (ts/core/abi.ts), compiled with esbuild (a dev dependency, through tsup).
 * @param {URL} root the repository
 * @returns {Promise<Record<string, any>>}
 */
async function abiLayout(root) {
  const source = readFileSync(new URL("ts/core/abi.ts", root), "utf8");
  const esbuild = await import("esbuild");
  const { code } = esbuild.transformSync(source, { loader: "ts", format: "esm" });
  return import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}

/**
 * A direct step on its own instance of `wasm` (bytes of entrograd-simd.wasm or entrograd.wasm).
 * Same shape, parameters and batch as the API contender; SGD with `lr` on w, g and b; the sum
 * reduction and the entropy objective.
 * @param {URL} root
 * @param {Uint8Array<ArrayBuffer>} wasm
 * @param {{ inputs: number; outputs: number; batch: number; x: Float32Array; w: Float32Array; g: Float32Array; b: Float32Array; lr: number }} p
 * @returns {Promise<{ step: () => number; entropy: () => number }>}
 */
export async function directStep(root, wasm, p) {
  const abi = await abiLayout(root);
  const { inputs, outputs, batch } = p;
  const module = new WebAssembly.Module(wasm);
  // wasm-bindgen's one import fills its externref table; nothing here uses that table.
  /** @type {WebAssembly.Imports} */
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] = () => {};
  }
  const e = /** @type {any} */ (new WebAssembly.Instance(module, imports).exports);
  e.__wbindgen_start?.();
  /** @param {number} floats */
  const alloc = (floats) => {
    const ptr = e.allocate(floats) >>> 0;
    if (ptr === 0) throw new Error("direct: allocate failed");
    return ptr;
  };
  const packFloats = e.pack_floats(batch, inputs, outputs) >>> 0;
  const at = {
    x: alloc(batch * inputs),
    w: alloc(inputs * outputs),
    g: alloc(inputs * outputs),
    b: alloc(outputs),
    z: alloc(batch * outputs),
    d: alloc(batch * outputs),
    delta: alloc(batch * outputs),
    dw: alloc(inputs * outputs),
    db: alloc(outputs),
    pack: alloc(packFloats),
    rules: alloc((3 * abi.RULE_RECORD_BYTES) / 4),
    args: alloc(abi.ARGS_BYTES / 4),
    results: alloc(abi.RESULTS_BYTES / 4),
  };
  const f32 = () => new Float32Array(e.memory.buffer);
  f32().set(p.x, at.x / 4);
  f32().set(p.w, at.w / 4);
  f32().set(p.g, at.g / 4);
  f32().set(p.b, at.b / 4);
  const u = new Uint32Array(e.memory.buffer, at.args, abi.ARGS_BYTES / 4);
  const f = new Float32Array(e.memory.buffer, at.args, abi.ARGS_BYTES / 4);
  const A = abi.ArgsU32,
    AF = abi.ArgsF32;
  u[A.batch] = batch;
  u[A.inputs] = inputs;
  u[A.outputs] = outputs;
  for (const k of /** @type {const} */ ([
    "x",
    "w",
    "g",
    "b",
    "z",
    "d",
    "delta",
    "dw",
    "db",
    "pack",
    "rules",
    "results",
  ]))
    u[A[k]] = at[k];
  u[A.packLen] = packFloats;
  f[AF.entropyWeight] = 1;
  f[AF.crossEntropyWeight] = 0;
  f[AF.scale] = 1;
  for (let k = 0; k < 3; k++) {
    const base = (at.rules + k * abi.RULE_RECORD_BYTES) / 4;
    new Uint32Array(e.memory.buffer)[base + abi.RuleRecordU32.kind] = abi.RuleKind.Sgd;
    new Float32Array(e.memory.buffer)[base + abi.RuleRecordF32.lr] = p.lr;
  }
  const step = e.step,
    objective = e.objective,
    args = at.args;
  const results = () => new Float64Array(e.memory.buffer, at.results, abi.RESULTS_BYTES / 8);
  // The args block and memory never change between calls: nothing to refill.
  const status = step(args);
  if (status !== 0) throw new Error(`direct: step returned status ${status}`);
  return {
    step: () => step(args),
    entropy: () => {
      if (objective(args) !== 0) throw new Error("direct: objective failed");
      return results()[abi.ResultsF64.entropy];
    },
  };
}
