// The public names docs/api.md fixes, all present in the built package. The detailed tests of the
// newer parts (save/load, Adam) run only once their names exist; this test says which are missing.
import { describe, expect, it } from "vitest";
import * as pkg from "entrograd";

describe("API surface (docs/api.md)", () => {
  it("every name in the contract exists", () => {
    const missing: string[] = [];
    const has = (o: unknown, k: string | symbol) => o != null && k in (o as object);
    for (const k of [
      "init",
      "initSync",
      "backend",
      "Model",
      "SGD",
      "Adam",
      "EntrogradError",
      "entropyBits",
      "sigmoid",
      "memoryBytes",
    ])
      if (!has(pkg, k)) missing.push(k);
    const M = (pkg as Record<string, unknown>).Model as { prototype: object } | undefined;
    for (const k of ["from", "load"]) if (!has(M, k)) missing.push(`Model.${k}`);
    for (const k of [
      "inputs",
      "outputs",
      "backend",
      "w",
      "g",
      "b",
      "input",
      "forward",
      "entropy",
      "gradients",
      "clone",
      "save",
      "dispose",
    ])
      if (!has(M?.prototype, k)) missing.push(`Model#${k}`);
    if (typeof Symbol.dispose === "symbol" && !has(M?.prototype, Symbol.dispose))
      missing.push("Model#[Symbol.dispose]");
    for (const opt of ["SGD", "Adam"]) {
      const O = (pkg as Record<string, unknown>)[opt] as { prototype: object } | undefined;
      if (!O) continue;
      for (const k of ["lr", "step", "stateDict", "loadStateDict", "reset"])
        if (!has(O.prototype, k)) missing.push(`${opt}#${k}`);
    }
    expect(missing, "names in docs/api.md missing from dist/index.js").toEqual([]);
  });
});
