// Loading: NOT_READY before init(), what init() resolves to, initSync, and the entrograd/js subpath.
// Each test imports a fresh copy of the package (vi.resetModules), so no earlier init() leaks in.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import * as ref from "./reference";
import { expectClose, paramsOf, tolerances } from "./helpers";

type Pkg = typeof import("entrograd");

async function fresh(): Promise<Pkg> {
  vi.resetModules();
  return (await import("entrograd")) as Pkg;
}

function codeOf(fn: () => unknown, pkg: { EntrogradError: Pkg["EntrogradError"] }): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(pkg.EntrogradError);
    return (e as InstanceType<Pkg["EntrogradError"]>).code;
  }
  return undefined;
}

const x = new Float32Array([0.5, -1, 2, 0.25, 1.5, -0.75]);

function expectForwardRight(m: InstanceType<Pkg["Model"]>, label: string) {
  const p = paramsOf(m);
  const e = ref.evaluate(p, x);
  expectClose(Array.from(m.forward(x).z), e.z, tolerances(p, x, e).z, label);
}

describe("loading", () => {
  it("WebAssembly backends before init() throw NOT_READY; js works without init()", async () => {
    const pkg = await fresh();
    for (const backend of ["wasm-simd", "wasm"] as const) {
      expect(
        codeOf(() => new pkg.Model({ inputs: 3, outputs: 2, backend }), pkg),
        `new Model ${backend}`,
      ).toBe("NOT_READY");
      expect(
        codeOf(() => pkg.Model.from({ inputs: 3, outputs: 2, w: new Float32Array(6), backend }), pkg),
        `Model.from ${backend}`,
      ).toBe("NOT_READY");
    }
    const m = new pkg.Model({ inputs: 3, outputs: 2, seed: 1, backend: "js" });
    expect(m.backend).toBe("js");
    expectForwardRight(m, "js before init");
    m.dispose();
    // After init() the same calls work.
    const name = await pkg.init();
    expect(name).toBe("wasm-simd"); // Node 20 on x86-64 has SIMD128
    expect(pkg.backend()).toBe(name);
    for (const backend of ["wasm-simd", "wasm"] as const) {
      const w = new pkg.Model({ inputs: 3, outputs: 2, seed: 1, backend });
      expect(w.backend).toBe(backend);
      expectForwardRight(w, `${backend} after init`);
      w.dispose();
    }
    const dflt = new pkg.Model({ inputs: 3, outputs: 2 });
    expect(dflt.backend).toBe(name);
    dflt.dispose();
  });

  it("init() and initSync() with an unknown option key or simd mode, or hostile options: OPTION", async () => {
    const pkg = await fresh();
    const throwing = Object.defineProperty({}, "simd", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    // Hostile options too (issue 12): a getter that throws, a revoked Proxy.
    for (const options of [{ bogus: 1 }, { simd: "sometimes" }, throwing, revocable.proxy]) {
      expect(
        codeOf(() => pkg.initSync(options as never), pkg),
        "initSync",
      ).toBe("OPTION");
      let err: unknown;
      try {
        await (async () => pkg.init(options as never))();
      } catch (e) {
        err = e;
      }
      expect(err, String(err)).toBeInstanceOf(pkg.EntrogradError);
      expect((err as InstanceType<Pkg["EntrogradError"]>).code).toBe("OPTION");
    }
    // ...and a later good init() still works.
    expect(await pkg.init()).toBe("wasm-simd");
  });

  it("init() is idempotent and concurrent calls agree", async () => {
    const pkg = await fresh();
    const [a, b] = await Promise.all([pkg.init(), pkg.init()]);
    expect(a).toBe(b);
    expect(await pkg.init()).toBe(a);
  });

  it('init({ simd: "off" }) resolves to "wasm", and new models get it', async () => {
    const pkg = await fresh();
    expect(await pkg.init({ simd: "off" })).toBe("wasm");
    expect(pkg.backend()).toBe("wasm");
    const m = new pkg.Model({ inputs: 3, outputs: 2, seed: 2 });
    expect(m.backend).toBe("wasm");
    expectForwardRight(m, "simd off");
    m.dispose();
  });

  // API.md: where WebAssembly is missing, init() resolves to the next backend down, "js".
  it('without WebAssembly, init() and initSync() resolve to "js", new models get it, and "require" is NOT_READY', async () => {
    vi.stubGlobal("WebAssembly", undefined);
    try {
      const pkg = await fresh();
      expect(await pkg.init()).toBe("js");
      expect(pkg.backend()).toBe("js");
      expect(pkg.initSync()).toBe("js");
      const m = new pkg.Model({ inputs: 3, outputs: 2, seed: 4 });
      expect(m.backend).toBe("js");
      expectForwardRight(m, "without WebAssembly");
      m.dispose();
      expect(codeOf(() => new pkg.Model({ inputs: 3, outputs: 2, backend: "wasm-simd" }), pkg)).toBe("NOT_READY");
      const again = await fresh();
      await expect(again.init({ simd: "require" })).rejects.toMatchObject({ code: "NOT_READY" });
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("initSync({ wasm: bytes }) loads synchronously", async () => {
    const pkg = await fresh();
    const bytes = readFileSync(fileURLToPath(new URL("../dist/entrograd-simd.wasm", import.meta.url)));
    const name = pkg.initSync({ wasm: bytes });
    expect(["wasm-simd", "wasm"]).toContain(name);
    const m = new pkg.Model({ inputs: 3, outputs: 2, seed: 3, backend: name });
    expectForwardRight(m, "after initSync");
    m.dispose();
  });

  it("entrograd/js exports the main entry's API and nothing else", async () => {
    vi.resetModules();
    const js = await import("entrograd/js");
    const main = await fresh();
    expect(Object.keys(js).sort()).toEqual(Object.keys(main).sort());
    expect(await js.init()).toBe("js");
    expect(js.initSync()).toBe("js");
  });

  it("entrograd/js's Model is the js backend, also after the main entry's init() (one module graph)", async () => {
    vi.resetModules();
    const main = (await import("entrograd")) as Pkg;
    const js = (await import("entrograd/js")) as unknown as Pkg;
    expect(await main.init()).toBe("wasm-simd");
    expect(new main.Model({ inputs: 3, outputs: 2 }).backend).toBe("wasm-simd");
    const a = new js.Model({ inputs: 3, outputs: 2, seed: 9 });
    expect(a.backend).toBe("js");
    expect(new js.Model({ inputs: 3, outputs: 2, backend: "js" }).backend).toBe("js");
    expect(js.Model.from({ inputs: 3, outputs: 2, w: a.w }).backend).toBe("js");
    expect(js.Model.load(a.save()).backend).toBe("js");
    expect(codeOf(() => new js.Model({ inputs: 3, outputs: 2, backend: "wasm-simd" }), js)).toBe("OPTION");
    expect(codeOf(() => js.Model.load(a.save(), { backend: "wasm" }), js)).toBe("OPTION");
    // The main entry's Model is unchanged: the backend asked for, or the best loaded.
    expect(main.Model.load(a.save()).backend).toBe("wasm-simd");
  });

  it("entrograd/js is the pure-JS fallback and matches the main package's js backend", async () => {
    vi.resetModules();
    const js = (await import("entrograd/js")) as unknown as Pkg;
    const main = await fresh();
    const a = new js.Model({ inputs: 3, outputs: 2, seed: 9 });
    expect(a.backend).toBe("js");
    expectForwardRight(a, "entrograd/js");
    const b = new main.Model({ inputs: 3, outputs: 2, seed: 9, backend: "js" });
    expect(Array.from(a.w)).toEqual(Array.from(b.w));
    a.dispose();
    b.dispose();
  });
});
