// The short soak inside the test run (test/soak/driver.mjs --short, in a child node with
// --expose-gc): training with changing batch sizes on every backend and on a large model, models
// and optimizers created and dropped in a loop (some disposed, some left to the GC). The JS heap
// and WebAssembly memory must stay flat, and long-lived models must compute exactly what fresh
// models with their parameters compute. The long version: npm run soak.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { lastLine } from "./helpers";

describe("soak (short)", () => {
  it("heap and wasm memory flat, long-lived models equal fresh ones", () => {
    const script = fileURLToPath(new URL("./soak/driver.mjs", import.meta.url));
    const r = spawnSync(process.execPath, ["--expose-gc", script, "--short"], { encoding: "utf8", timeout: 120_000 });
    expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
    const figures = JSON.parse(lastLine(r.stdout)) as { failures: string[] };
    expect(figures.failures).toEqual([]);
  }, 150_000);
});
