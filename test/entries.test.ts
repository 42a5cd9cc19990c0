// The entries per runtime, as built in dist/: which built-ins each one imports, that importing
// one does nothing, and the loading paths that the fixtures of test/runtimes/ reach only in
// other runtimes (the browser entry's inlined fallback, a Module of another realm, ...).
// Each test imports fresh copies (vi.resetModules), so no earlier init() leaks in.
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import vm from "node:vm";
import { afterEach, describe, expect, it, vi } from "vitest";

type Pkg = typeof import("entrograd");

const distFile = (f: string): string => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));

async function fresh(entry: "index.js" | "browser.js"): Promise<Pkg> {
  vi.resetModules();
  return (await import(/* @vite-ignore */ pathToFileURL(distFile(entry)).href)) as Pkg;
}

async function codeOf(fn: () => unknown): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return undefined;
}

/** Every specifier that a dist file imports statically or dynamically, following ./ files. */
function imports(entry: string, seen = new Set<string>(), found = new Set<string>()): Set<string> {
  if (seen.has(entry)) return found;
  seen.add(entry);
  const code = readFileSync(distFile(entry), "utf8");
  const patterns = [
    /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["'];?\s*$/gm, // import x from "…", export { x } from "…"
    /^\s*import\s*["']([^"']+)["'];?\s*$/gm, // import "…"
    /\bimport\(\s*["']([^"']+)["']\s*\)/g, // import("…")
  ];
  for (const [, spec] of patterns.flatMap((p) => [...code.matchAll(p)])) {
    found.add(spec);
    if (spec.startsWith("./") && spec.endsWith(".js")) imports(spec.slice(2), seen, found);
  }
  return found;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("entries", () => {
  it("only the Node entry imports Node built-ins", () => {
    for (const entry of ["browser.js", "workerd.js", "edge-light.js", "js.js"]) {
      const found = [...imports(entry)];
      expect(
        found.some((s) => /^\.\/chunk-.+\.js$/.test(s)),
        `${entry} imports its chunks`,
      ).toBe(true);
      expect(
        found.filter((s) => !/^\.\.?\//.test(s)),
        entry,
      ).toEqual([]);
    }
    // The SIMD and scalar modules inlined, and the threads module (in the threads' chunk).
    expect([...imports("browser.js")].filter((s) => s.includes("base64")).length).toBe(3);
    // node:os and node:worker_threads only in the threads' chunk, loaded by init({ threads }).
    expect([...imports("index.js")].filter((s) => s.startsWith("node:")).sort()).toEqual([
      "node:fs",
      "node:fs/promises",
      "node:os",
      "node:worker_threads",
    ]);
  });

  it("the edge entries import the SIMD module statically, the browser entry fetches it", () => {
    expect([...imports("workerd.js")]).toContain("./entrograd-simd.wasm");
    expect([...imports("edge-light.js")]).toContain("./entrograd-simd.wasm?module");
    const browser = readFileSync(distFile("browser.js"), "utf8");
    // Literal, so that Vite and webpack find and copy the file.
    expect(browser).toContain('new URL("./entrograd-simd.wasm", import.meta.url)');
    expect(browser).toContain('new URL("./entrograd.wasm", import.meta.url)');
  });

  it("every entry exports the same API (new exports belong in ts/api.ts)", async () => {
    const names = (dts: string): string[] => {
      const text = readFileSync(distFile(dts), "utf8");
      const found = [...text.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap(([, list]) =>
        list
          .split(",")
          .map(
            (item) =>
              item
                .trim()
                .replace(/^type\s+/, "")
                .split(/\s+as\s+/)
                .at(-1) ?? "",
          )
          .filter(Boolean),
      );
      return [...new Set(found)].sort();
    };
    const api = names("index.d.ts");
    expect(api).toContain("init");
    for (const dts of ["index.d.cts", "browser.d.ts", "workerd.d.ts", "edge-light.d.ts"])
      expect(names(dts), dts).toEqual(api);
    const [node, browser] = [await fresh("index.js"), await fresh("browser.js")];
    expect(Object.keys(browser).sort()).toEqual(Object.keys(node).sort());
  });

  it("importing an entry does nothing: no fetch, no timer, no randomness", async () => {
    const spies = [
      vi.spyOn(globalThis, "fetch"),
      vi.spyOn(globalThis, "setTimeout"),
      vi.spyOn(globalThis, "queueMicrotask"),
      vi.spyOn(Math, "random"),
      vi.spyOn(globalThis.crypto, "getRandomValues"),
    ];
    await fresh("browser.js");
    await fresh("index.js");
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});

describe("the browser entry, run in Node", () => {
  // Node's fetch cannot read file: URLs, as a bundle whose .wasm file was not copied cannot
  // fetch it: init() falls back to the inlined copy.
  it("falls back to the inlined copy and loads the SIMD build alone", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const pkg = await fresh("browser.js");
    expect(await pkg.init()).toBe("wasm-simd");
    expect(fetchSpy).toHaveBeenCalledTimes(1);
    expect(String(fetchSpy.mock.calls[0][0])).toMatch(/\/entrograd-simd\.wasm$/);
    expect(await codeOf(() => new pkg.Model({ inputs: 2, outputs: 1, backend: "wasm" }))).toBe("NOT_READY");
    const m = new pkg.Model({ inputs: 2, outputs: 1, seed: 1 });
    expect(m.backend).toBe("wasm-simd");
    m.dispose();
  });

  it('simd: "off" loads the scalar build alone', async () => {
    const pkg = await fresh("browser.js");
    expect(await pkg.init({ simd: "off" })).toBe("wasm");
    expect(await codeOf(() => new pkg.Model({ inputs: 2, outputs: 1, backend: "wasm-simd" }))).toBe("NOT_READY");
  });

  it("initSync() without a module asks for one", async () => {
    const pkg = await fresh("browser.js");
    expect(await codeOf(() => pkg.initSync())).toBe("NOT_READY");
    expect(pkg.initSync({ wasm: readFileSync(distFile("entrograd-simd.wasm")) })).toBe("wasm-simd");
  });

  it("a server that answers with something else (a dev server's index.html) is not a module", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(
      async () => new Response("<!doctype html>", { headers: { "content-type": "text/html" } }),
    );
    const pkg = await fresh("browser.js");
    expect(await pkg.init()).toBe("wasm-simd"); // from the inlined copy
  });
});

describe("an engine without SIMD (validate() of the probe says no)", () => {
  it("Node: init() resolves to the scalar build", async () => {
    vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    const pkg = await fresh("index.js");
    expect(await pkg.init()).toBe("wasm");
    expect(pkg.backend()).toBe("wasm");
  });

  it('simd: "require" rejects with NOT_READY', async () => {
    vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    const pkg = await fresh("index.js");
    expect(await codeOf(() => pkg.init({ simd: "require" }))).toBe("NOT_READY");
  });

  it("browser: only the scalar build is fetched", async () => {
    vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const pkg = await fresh("browser.js");
    expect(await pkg.init()).toBe("wasm");
    expect(fetchSpy.mock.calls.map((c) => String(c[0]).split("/").pop())).toEqual(["entrograd.wasm"]);
  });

  it("an engine that will not answer validate() gets the SIMD build tried", async () => {
    vi.spyOn(WebAssembly, "validate").mockImplementation(() => {
      throw new Error("validate disallowed");
    });
    const pkg = await fresh("index.js");
    expect(await pkg.init()).toBe("wasm-simd");
  });
});

describe("init and initSync", () => {
  it("init({ wasm }) takes a file: URL and a path in Node; only that module is loaded", async () => {
    let pkg = await fresh("index.js");
    expect(await pkg.init({ wasm: pathToFileURL(distFile("entrograd-simd.wasm")) })).toBe("wasm-simd");
    expect(await codeOf(() => new pkg.Model({ inputs: 2, outputs: 1, backend: "wasm" }))).toBe("NOT_READY");
    pkg = await fresh("index.js");
    expect(await pkg.init({ wasm: distFile("entrograd.wasm") })).toBe("wasm");
  });

  it("init({ wasm }) takes a Response and a Promise<Response>", async () => {
    const bytes = readFileSync(distFile("entrograd-simd.wasm"));
    const response = () => new Response(bytes, { headers: { "content-type": "application/wasm" } });
    let pkg = await fresh("index.js");
    expect(await pkg.init({ wasm: response() })).toBe("wasm-simd");
    pkg = await fresh("index.js");
    expect(await pkg.init({ wasm: Promise.resolve(response()) })).toBe("wasm-simd");
  });

  it("initSync({ wasm }) takes a Module compiled in another realm (an edge sandbox's host)", async () => {
    const bytes = readFileSync(distFile("entrograd-simd.wasm"));
    const context = vm.createContext({ bytes });
    const foreign = vm.runInContext("new WebAssembly.Module(bytes)", context) as WebAssembly.Module;
    expect(foreign instanceof WebAssembly.Module).toBe(false);
    const pkg = await fresh("index.js");
    expect(pkg.initSync({ wasm: foreign })).toBe("wasm-simd");
  });

  it("initSync() in Node reads both builds; init() and initSync() afterwards agree", async () => {
    const pkg = await fresh("index.js");
    expect(pkg.initSync()).toBe("wasm-simd");
    new pkg.Model({ inputs: 2, outputs: 1, backend: "wasm" }).dispose();
    expect(await pkg.init()).toBe("wasm-simd");
    expect(pkg.initSync()).toBe("wasm-simd");
  });

  it("initSync() while init() is loading says so; after it, returns the backend", async () => {
    const pkg = await fresh("index.js");
    const pending = pkg.init();
    expect(await codeOf(() => pkg.initSync())).toBe("NOT_READY");
    expect(await pending).toBe("wasm-simd");
    expect(pkg.initSync()).toBe("wasm-simd");
  });

  it('a module that contradicts simd is refused: the SIMD build with "off", the scalar one with "require"', async () => {
    let pkg = await fresh("index.js");
    expect(await codeOf(() => pkg.init({ wasm: readFileSync(distFile("entrograd-simd.wasm")), simd: "off" }))).toBe(
      "OPTION",
    );
    pkg = await fresh("index.js");
    expect(await codeOf(() => pkg.init({ wasm: readFileSync(distFile("entrograd.wasm")), simd: "require" }))).toBe(
      "NOT_READY",
    );
  });

  it("a missing file rejects with NOT_READY, and a later init() may succeed", async () => {
    const pkg = await fresh("index.js");
    expect(await codeOf(() => pkg.init({ wasm: distFile("no-such.wasm") }))).toBe("NOT_READY");
    expect(await pkg.init()).toBe("wasm-simd");
  });
});
