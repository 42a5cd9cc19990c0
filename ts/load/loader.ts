// Loading the WebAssembly cores: one place, shared by every runtime. A runtime's entry only
// says where that runtime finds the .wasm files (a `Locator`); everything else happens here.
//
// Order of preference: the SIMD build (when a tiny validate() probe says SIMD128 exists and the
// loaded core passes a one-shot self-test), then the scalar build, then the pure-JS core.
// Nothing here runs at module load: no I/O, no randomness, no promise until init() is called.

import * as scalarGlue from "../../pkg/scalar/entrograd_core.js";
import * as simdGlue from "../../pkg/simd/entrograd_core.js";
import { backend, hasCore, registerCore, setThreaded, threads as threadCount } from "../core/registry.js";
import { Call, Frame, type BackendName, type Core, type FrameViews } from "../core/types.js";
import { WasmCore, type CoreExports } from "../core/wasm.js";
import { EntrogradError, fail, isEntrogradError, show } from "../errors.js";
import { choiceOption, readOptions } from "../options.js";

export type WasmSource = WebAssembly.Module | BufferSource | URL | string | Response | Promise<Response>;
export type SimdMode = "auto" | "require" | "off";

export interface InitOptions {
  /**
   * The module to use instead of the one the package finds by itself: either build, as a
   * compiled `WebAssembly.Module`, its bytes, a URL or string to fetch (in Node, Deno and Bun
   * also a file: URL or a path), or a `Response`. Only that module is loaded.
   */
  wasm?: WasmSource;
  /** "auto" (default): SIMD where it works; "require": fail without it; "off": never. */
  simd?: SimdMode;
  /**
   * Threads for the wasm-simd backend's calls: 1 (default), a whole number, or "auto" (the
   * cores, at most 8). Where SharedArrayBuffer and workers exist (Node, Deno, Bun, browsers in a
   * cross-origin-isolated page) init() starts threads − 1 workers on shared memory; elsewhere
   * it runs on one thread, as threads() and threadInfo() then say. A later init({ threads })
   * starts (or restarts with another number) the workers.
   */
  threads?: number | "auto";
}

export interface InitSyncOptions {
  /** A compiled `WebAssembly.Module` (edge runtimes) or the module's bytes. */
  wasm?: WebAssembly.Module | BufferSource;
  simd?: SimdMode;
  /** Accepted, but workers start asynchronously: only init({ threads }) starts them. */
  threads?: number | "auto";
}

/** Starts the threaded backend (ts/threads/): the entries that have one pass it. */
export type ThreadsStarter = (wanted: number | "auto") => Promise<void>;

/** How one runtime finds the package's own .wasm files. */
export interface Locator {
  /** One build (SIMD or scalar); null when this runtime carries no copy of it. */
  locate(simd: boolean): WasmSource | Promise<WasmSource> | null;
  /** A second copy, tried when the located one cannot be loaded (web: one inlined in JS). */
  fallback?(simd: boolean): Promise<WasmSource>;
  /** The same, synchronously: a Module or bytes, or null. Absent: initSync needs { wasm }. */
  locateSync?(simd: boolean): WebAssembly.Module | BufferSource | null;
  /**
   * Also load the scalar build when the SIMD one works (so `backend: "wasm"` is available).
   * True where that costs only a local file read (Node, Deno, Bun); false where it would cost
   * a download or bundle size (browsers, edge runtimes).
   */
  eagerScalar: boolean;
  /** How this runtime reads a URL or string the user passes (Node: file: URLs and paths). */
  read?(source: URL | string): WasmSource | Promise<WasmSource>;
}

/** The glue, with the two internals tsup.config.ts has it export (for instantiateSync). */
type Glue = typeof simdGlue & {
  __wbg_get_imports(): WebAssembly.Imports;
  __wbg_finalize_init(instance: WebAssembly.Instance, module: WebAssembly.Module): unknown;
};
const simdBuild = simdGlue as Glue;
const scalarBuild = scalarGlue as Glue;
const SIMD_MODES: readonly SimdMode[] = ["auto", "require", "off"];

// The smallest module using a SIMD opcode (i8x16.splat, i8x16.popcnt): validate() tells
// whether this engine has SIMD128 without compiling anything big.
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

function hasWebAssembly(): boolean {
  return typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";
}

/** true or false as validate() answers; undefined when the engine will not say (then: try it). */
function simdSupport(): boolean | undefined {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return undefined;
  }
}

/**
 * One-shot self-test: a tiny forward pass must match the same pass written out in plain JS
 * (in float64, as the JS core computes it), or the core is not used.
 */
function selfTest(core: Core): boolean {
  const mine = forwardProbe(core);
  if (mine === null) return false;
  const reference = probeReference();
  return mine.every((v, i) => Math.abs(v - reference[i]) <= 1e-5);
}

/** The probe's σ(x·wᵀ + b), directly: a few lines instead of a first run of the JS core. */
function probeReference(): number[] {
  const inputs = 5,
    outputs = 3,
    batch = 2;
  const out: number[] = [];
  for (let n = 0; n < batch; n++) {
    for (let o = 0; o < outputs; o++) {
      let z = o === 1 ? 0.5 : 0;
      for (let i = 0; i < inputs; i++)
        z += Math.fround(Math.cos(n * inputs + i)) * Math.fround(Math.sin(o * inputs + i + 1));
      out.push(1 / (1 + Math.exp(-z)));
    }
  }
  return out;
}

/** σ(x·wᵀ + b) for a fixed 2 × 5 batch and 3 outputs, on one core. */
function forwardProbe(core: Core): number[] | null {
  const inputs = 5,
    outputs = 3,
    batch = 2;
  const packed = core.packFloats(batch, inputs, outputs);
  const block = core.allocate(96 + packed);
  if (block === null) return null;
  const at = (offset: number, length: number) => core.view(block, offset, length);
  const views: FrameViews = {
    w: at(0, 15),
    g: at(16, 15),
    b: at(32, 3),
    x: at(36, 10),
    pack: at(96, packed),
    z: at(64, 6),
    d: at(72, 6),
    targets: at(80, 6),
    delta: at(80, 6),
    unitEntropy: at(80, 6),
    unitLoss: at(80, 6),
    dw: at(80, 6),
    db: at(80, 6),
    sampleWeights: at(80, 6),
    positive: at(80, 6),
    meanPrediction: at(80, 6),
    prior: at(80, 6),
    marginal: at(80, 6),
    running: at(80, 6),
  };
  const w = views.w.f32();
  for (let i = 0; i < w.length; i++) w[i] = Math.sin(i + 1);
  const x = views.x.f32();
  for (let i = 0; i < x.length; i++) x[i] = Math.cos(i);
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

/**
 * Checks and registers an instantiated module. Returns false when it fails its self-test (the
 * next backend down is used then); throws when it contradicts `simd`. The self-test guards the
 * default backend: the scalar build (the same kernels without SIMD) runs it only when it is the
 * default (`test`), so a cold init() probes one module (a probe compiles that module's call
 * path, ~2 ms; see README "Performance").
 */
function register(exports: unknown, mode: SimdMode, what: string, test = true): boolean {
  const core = new WasmCore(exports as CoreExports);
  if (core.name === "wasm-simd" && mode === "off")
    fail("OPTION", `${what}: simd is "off" but the module given is the SIMD build`);
  if (core.name === "wasm" && mode === "require")
    fail("NOT_READY", `${what}: simd is "require" but the module given has no SIMD`);
  if (test && !selfTest(core)) {
    if (mode === "require") fail("NOT_READY", `${what}: the ${core.name} core failed its self-test`);
    return false;
  }
  registerCore(core);
  return true;
}

/** Threads asked for at most (a typo of a thousand must not start a thousand workers). */
const MAX_THREADS = 64;

function parse(
  options: unknown,
  what: string,
): { wasm: unknown; simd: SimdMode; threads: number | "auto" | undefined } {
  const o = readOptions(options, ["wasm", "simd", "threads"], what);
  const t = o.threads;
  if (t !== undefined && t !== "auto" && !(typeof t === "number" && Number.isInteger(t) && t >= 1 && t <= MAX_THREADS))
    fail("OPTION", `${what}: threads must be "auto" or a whole number from 1 to ${MAX_THREADS}, got ${show(t)}`);
  return {
    wasm: o.wasm,
    simd: choiceOption(o.simd, "simd", SIMD_MODES, "auto"),
    threads: t as number | "auto" | undefined,
  };
}

/** Starts the threads asked for, or notes why there are none. */
async function startThreads(wanted: number | "auto" | undefined, starter: ThreadsStarter | undefined): Promise<void> {
  if (wanted === undefined) return;
  if (starter === undefined) setThreaded(null, "this runtime's entry of the package has no threads (edge runtimes)");
  else if (!hasCore("wasm-simd")) setThreaded(null, "threads need the wasm-simd backend, which this runtime has not");
  else await starter(wanted);
}

const message = (e: unknown): string => {
  try {
    if (e instanceof Error) return e.message;
  } catch {
    // a thrown Proxy whose traps throw: shown as it can be
  }
  return show(e);
};
const notReady = (what: string, e: unknown): EntrogradError =>
  isEntrogradError(e) ? e : new EntrogradError("NOT_READY", `${what}: ${message(e)}`);

/** A WebAssembly.Module of any realm (`instanceof` only knows this one's). */
const isModule = (x: unknown): x is WebAssembly.Module =>
  Object.prototype.toString.call(x) === "[object WebAssembly.Module]";

/** Bytes (any realm's ArrayBuffer or view). */
const isBytes = (x: unknown): x is BufferSource =>
  ArrayBuffer.isView(x) || Object.prototype.toString.call(x) === "[object ArrayBuffer]";

async function instantiate(glue: Glue, source: WasmSource): Promise<unknown> {
  // Bytes or a Module skip the glue's async init: its `instanceof Response` and `Request`
  // checks make Node load its fetch implementation (undici), which costs more than all the
  // rest of init() (see README "Performance"). Compiling stays asynchronous.
  if (isModule(source)) return instantiateSync(glue, source);
  if (isBytes(source)) return instantiateSync(glue, await WebAssembly.compile(source));
  return glue.default({ module_or_path: source as Parameters<Glue["default"]>[0] });
}

/**
 * Synchronous instantiation. A Module is instantiated directly: the glue's initSync would
 * try to compile one from another realm again (a sandbox's host compiled it), which edge
 * sandboxes forbid. Bytes go through the glue.
 */
function instantiateSync(glue: Glue, source: WebAssembly.Module | BufferSource): unknown {
  if (!isModule(source)) return glue.initSync({ module: source });
  return glue.__wbg_finalize_init(new WebAssembly.Instance(source, glue.__wbg_get_imports()), source);
}

/** Loads one build from the locator (then its fallback). null: this runtime has no copy. */
async function loadBuild(locator: Locator, simd: boolean): Promise<unknown> {
  const glue = simd ? simdBuild : scalarBuild;
  let first: unknown;
  try {
    const source = await locator.locate(simd);
    if (source === null) return null;
    return await instantiate(glue, source);
  } catch (e) {
    if (locator.fallback === undefined) throw e;
    first = e;
  }
  try {
    return await instantiate(glue, await locator.fallback(simd));
  } catch (e) {
    throw new Error(`${message(first)}; the fallback copy failed too: ${message(e)}`);
  }
}

async function initAsync(locator: Locator, wasm: unknown, mode: SimdMode): Promise<BackendName> {
  if (!hasWebAssembly()) {
    if (mode === "require") fail("NOT_READY", "init: this runtime has no WebAssembly");
    return "js";
  }
  if (wasm !== undefined) {
    const given = wasm as WasmSource;
    const source =
      locator.read !== undefined && (typeof given === "string" || given instanceof URL)
        ? await locator.read(given)
        : given;
    register(await instantiate(simdBuild, source), mode, "init");
    return backend();
  }
  const support = mode === "off" ? false : simdSupport();
  if (mode === "require" && support === false) fail("NOT_READY", "init: this runtime has no WebAssembly SIMD");
  // Start the scalar build's load at once where it is loaded anyway (local files).
  const eager = locator.eagerScalar ? loadBuild(locator, false) : null;
  eager?.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
  let simdError: unknown = null;
  if (support !== false) {
    try {
      const exports = await loadBuild(locator, true);
      if (exports === null && mode === "require") fail("NOT_READY", "init: this runtime has no copy of the SIMD build");
      if (exports !== null) register(exports, mode, "init");
    } catch (e) {
      if (mode === "require") throw e;
      simdError = e; // an engine without SIMD after all, or a missing file: try the scalar build
    }
  }
  if (hasCore("wasm-simd") && eager === null) return backend();
  try {
    const exports = await (eager ?? loadBuild(locator, false));
    if (exports !== null) register(exports, "auto", "init", !hasCore("wasm-simd"));
  } catch (e) {
    throw simdError === null ? e : new Error(`${message(simdError)}; the scalar build failed too: ${message(e)}`);
  }
  if (!hasCore("wasm-simd") && !hasCore("wasm") && simdError !== null) throw simdError;
  return backend();
}

let pending: Promise<BackendName> | null = null;
let settled = false;

/**
 * Loads the WebAssembly cores and resolves to the backend new models get by default.
 * Idempotent: concurrent and later calls share one promise (a failed call may be retried);
 * a later call that asks for threads starts them once that promise has settled.
 */
export function initWith(locator: Locator, options?: InitOptions, starter?: ThreadsStarter): Promise<BackendName> {
  if (pending !== null) {
    if (options === undefined) return pending;
    return pending.then(async (name) => {
      await startThreads(parse(options, "init").threads, starter);
      return name;
    });
  }
  const run = async (): Promise<BackendName> => {
    const { wasm, simd, threads } = parse(options, "init");
    const name = await initAsync(locator, wasm, simd);
    await startThreads(threads, starter);
    return name;
  };
  const p = run().then(
    (name) => {
      settled = true;
      return name;
    },
    (e: unknown) => {
      pending = null; // a failed init may be retried
      throw notReady("init", e);
    },
  );
  pending = p;
  return p;
}

/** Synchronous loading: from `{ wasm }` (a Module or bytes) or the runtime's own copy. */
export function initSyncWith(locator: Locator, options?: InitSyncOptions): BackendName {
  const { wasm, simd, threads } = parse(options, "initSync");
  if (threads !== undefined && threads !== 1 && threadCount() === 1)
    setThreaded(null, "initSync() starts no threads: await init({ threads })");
  if (settled) return backend();
  if (pending !== null) fail("NOT_READY", "initSync: init() is still loading; await it instead");
  if (!hasWebAssembly()) {
    if (simd === "require") fail("NOT_READY", "initSync: this runtime has no WebAssembly");
    return done();
  }
  try {
    if (wasm !== undefined) {
      register(instantiateSync(simdBuild, wasm as WebAssembly.Module | BufferSource), simd, "initSync");
      return done();
    }
    const locateSync = locator.locateSync;
    if (locateSync === undefined)
      fail("NOT_READY", "initSync: pass { wasm } (a WebAssembly.Module or bytes) in this runtime, or await init()");
    const support = simd === "off" ? false : simdSupport();
    if (simd === "require" && support === false) fail("NOT_READY", "initSync: this runtime has no WebAssembly SIMD");
    let simdError: unknown = null;
    if (support !== false) {
      try {
        const source = locateSync(true);
        if (source === null && simd === "require")
          fail("NOT_READY", "initSync: this runtime has no copy of the SIMD build");
        if (source !== null) register(instantiateSync(simdBuild, source), simd, "initSync");
      } catch (e) {
        if (simd === "require") throw e;
        simdError = e;
      }
    }
    if (!hasCore("wasm-simd") || locator.eagerScalar) {
      const source = locateSync(false);
      if (source !== null) register(instantiateSync(scalarBuild, source), "auto", "initSync", !hasCore("wasm-simd"));
      else if (simdError !== null) throw simdError;
    }
  } catch (e) {
    throw notReady("initSync", e);
  }
  return done();
}

function done(): BackendName {
  settled = true;
  pending = Promise.resolve(backend());
  return backend();
}
