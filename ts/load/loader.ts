// Loading the WebAssembly cores: one place, shared by every runtime. A runtime's entry
// only says how to find the .wasm files (a `Locator`); everything else happens here.

import * as scalarGlue from "../../pkg/scalar/entrograd_core.js";
import * as simdGlue from "../../pkg/simd/entrograd_core.js";
import { backend, coreFor, registerCore } from "../core/registry.js";
import { Call, Frame, type BackendName, type Core, type FrameViews } from "../core/types.js";
import { WasmCore, type CoreExports } from "../core/wasm.js";
import { EntrogradError, fail, show } from "../errors.js";
import { checkKeys, choiceOption, optionsObject } from "../options.js";

export type WasmSource = WebAssembly.Module | BufferSource | URL | string | Response | Promise<Response>;
export type SimdMode = "auto" | "require" | "off";

export interface InitOptions {
  /** The module to use instead of the one the package finds by itself. */
  wasm?: WasmSource;
  /** "auto" (default): SIMD where it works; "require": fail without it; "off": never. */
  simd?: SimdMode;
}

/** How a runtime finds the package's own .wasm files. */
export interface Locator {
  /** The SIMD build or the plain one, as anything wasm-bindgen's init accepts. */
  locate(simd: boolean): Promise<WasmSource>;
  locateSync?(simd: boolean): WebAssembly.Module | BufferSource;
}

type Glue = typeof simdGlue;
const SIMD_MODES: readonly SimdMode[] = ["auto", "require", "off"];

// The smallest module using a SIMD opcode (i8x16.splat, i8x16.popcnt): validate() tells
// whether this engine has SIMD128 without compiling anything big.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

export function hasWebAssembly(): boolean {
  return typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";
}

export function hasSimd(): boolean {
  try {
    return hasWebAssembly() && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/** One-shot self-test: a tiny forward pass must match the JS core, or the core is not used. */
function selfTest(core: Core): boolean {
  const [mine, reference] = [forwardProbe(core), forwardProbe(coreFor("js"))];
  if (mine === null || reference === null) return false;
  return mine.every((v, i) => Math.abs(v - reference[i]) <= 1e-5);
}

/** σ(x·wᵀ + b) for a fixed 2 × 5 batch and 3 outputs, on one core. */
function forwardProbe(core: Core): number[] | null {
  const inputs = 5, outputs = 3, batch = 2;
  const block = core.allocate(96);
  if (block === null) return null;
  const at = (offset: number, length: number) => core.view(block, offset, length);
  const views: FrameViews = {
    w: at(0, 15), g: at(16, 15), b: at(32, 3), x: at(36, 10), wsum: at(48, 15), z: at(64, 6), d: at(72, 6),
    targets: at(80, 6), delta: at(80, 6), units: at(80, 6), unitLoss: at(80, 6), dw: at(80, 6), db: at(80, 6),
  };
  views.w.f32().forEach((_, i, w) => (w[i] = Math.sin(i + 1)));
  views.x.f32().forEach((_, i, x) => (x[i] = Math.cos(i)));
  views.b.f32()[1] = 0.5;
  const frame = new Frame(inputs, outputs, views);
  frame.batch = batch;
  let out: number[] | null = null;
  if (core.attach(frame)) {
    if (core.run(Call.Forward, frame, null) === 0) out = Array.from(views.d.f32());
    core.detach(frame);
  }
  core.release(block);
  return out;
}

function register(exports: unknown, mode: SimdMode): BackendName {
  const core = new WasmCore(exports as CoreExports);
  if (core.name === "wasm-simd" && mode === "off") fail("OPTION", 'init: simd is "off" but the module given is the SIMD build');
  if (core.name === "wasm" && mode === "require") fail("NOT_READY", 'init: simd is "require" but the module given has no SIMD');
  if (!selfTest(core)) {
    if (mode === "require" || core.name === "wasm") fail("NOT_READY", `init: the ${core.name} core failed its self-test`);
    return core.name; // not registered: the next backend down is used
  }
  registerCore(core);
  return core.name;
}

async function load(glue: Glue, source: WasmSource | Promise<WasmSource>, mode: SimdMode): Promise<BackendName> {
  const exports = await glue.default({ module_or_path: source as Parameters<Glue["default"]>[0] });
  return register(exports, mode);
}

function parse(options: unknown, what: string): { wasm: unknown; simd: SimdMode } {
  const o = optionsObject(options, what);
  checkKeys(o, ["wasm", "simd"], what);
  return { wasm: o.wasm, simd: choiceOption(o.simd, "simd", SIMD_MODES, "auto") };
}

let pending: Promise<BackendName> | null = null;

/**
 * Loads the WebAssembly cores and resolves to the backend new models get by default.
 * Idempotent: concurrent and later calls share one promise.
 */
export function initWith(locator: Locator, options?: InitOptions): Promise<BackendName> {
  if (pending !== null) return pending;
  pending = (async () => {
    const { wasm, simd } = parse(options, "init");
    if (!hasWebAssembly()) {
      if (simd === "require") fail("NOT_READY", "init: this runtime has no WebAssembly");
      return "js";
    }
    if (wasm !== undefined) {
      await load(simdGlue, wasm as WasmSource, simd);
      return backend();
    }
    const useSimd = simd !== "off" && hasSimd();
    if (simd === "require" && !useSimd) fail("NOT_READY", "init: this runtime has no WebAssembly SIMD");
    const loads: Promise<unknown>[] = [load(scalarGlue, locator.locate(false), "auto")];
    if (useSimd) loads.push(load(simdGlue, locator.locate(true), simd));
    await Promise.all(loads);
    return backend();
  })().catch((e: unknown) => {
    pending = null; // a failed init may be retried
    throw e instanceof EntrogradError ? e : new EntrogradError("NOT_READY", `init: ${show(e)}`);
  });
  return pending;
}

/** Synchronous loading for runtimes that hand over a compiled module (edge functions). */
export function initSyncWith(locator: Locator, options?: { wasm?: WebAssembly.Module | BufferSource; simd?: SimdMode }): BackendName {
  const { wasm, simd } = parse(options, "initSync");
  if (!hasWebAssembly()) {
    if (simd === "require") fail("NOT_READY", "initSync: this runtime has no WebAssembly");
    return "js";
  }
  try {
    if (wasm !== undefined) {
      register(simdGlue.initSync({ module: wasm as WebAssembly.Module }), simd);
    } else {
      if (locator.locateSync === undefined) fail("NOT_READY", "initSync: pass { wasm } (a WebAssembly.Module or bytes) in this runtime");
      const useSimd = simd !== "off" && hasSimd();
      if (simd === "require" && !useSimd) fail("NOT_READY", "initSync: this runtime has no WebAssembly SIMD");
      register(scalarGlue.initSync({ module: locator.locateSync(false) }), "auto");
      if (useSimd) register(simdGlue.initSync({ module: locator.locateSync(true) }), simd);
    }
  } catch (e) {
    throw e instanceof EntrogradError ? e : new EntrogradError("NOT_READY", `initSync: ${show(e)}`);
  }
  pending = Promise.resolve(backend());
  return backend();
}
