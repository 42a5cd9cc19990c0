// Limits (issue 7): requests that cannot fit — sizes whose product overflows, batches beyond
// what the core can address or grow to — fail with MEMORY (or SHAPE for sizes that are not
// sizes) before any allocation or write: memory does not grow, the model is bitwise as before
// and keeps working, and so do the other models. The growth-to-the-limit case runs in a child
// process, which may take its WebAssembly memory to 4 GiB (virtual; the pages are not touched).
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD, memoryBytes } from "entrograd";
import { BACKENDS, bits, expectCode, lastLine } from "./helpers";

beforeAll(async () => {
  await init();
});

type AnyModel = InstanceType<typeof Model>;

/** A small working model, its forward on a fixed batch, and a checker that nothing moved. */
function fixture(backend: (typeof BACKENDS)[number]) {
  const m = new Model({ inputs: 6, outputs: 4, seed: 9, backend });
  const opt = new SGD(m, { lr: 0.1, momentum: 0.9 });
  const x = new Float32Array(6 * 5).map((_, k) => Math.sin(k));
  opt.step(x);
  const z = Array.from(bits(m.forward(x).z));
  const params = [m.w, m.g, m.b].map((v) => Array.from(bits(v)));
  const state = JSON.stringify(opt.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(v) : v));
  const other = new Model({ inputs: 3, outputs: 2, seed: 4, backend });
  const otherW = Array.from(bits(other.w));
  return {
    m,
    opt,
    /** Nothing changed and everything still works (memory did not grow when `noGrowth`). */
    intact(label: string, memoryBefore: number) {
      expect(memoryBytes(backend), `${label}: memory grew`).toBe(memoryBefore);
      expect(
        [m.w, m.g, m.b].map((v) => Array.from(bits(v))),
        `${label}: parameters`,
      ).toEqual(params);
      expect(
        JSON.stringify(opt.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(v) : v)),
        `${label}: optimizer`,
      ).toBe(state);
      expect(Array.from(bits(m.forward(x).z)), `${label}: forward after`).toEqual(z);
      expect(Array.from(bits(other.w)), `${label}: another model`).toEqual(otherW);
      expect(Number.isFinite(other.entropy(new Float32Array(3 * 7).fill(0.5)))).toBe(true);
    },
    done() {
      m.dispose();
      other.dispose();
    },
  };
}

describe.each(BACKENDS)("requests that cannot fit, on %s", (backend) => {
  it("models whose parameter count overflows or exceeds 4 GiB: MEMORY, nothing allocated", () => {
    const f = fixture(backend);
    const before = memoryBytes(backend);
    for (const [inputs, outputs] of [
      [2 ** 31, 2 ** 31],
      [2 ** 53, 2],
      [1e308, 1e308],
      [65536, 65536],
      [65536, 32769],
      [1, 2 ** 30],
      [2 ** 20, 2 ** 9],
      [2 ** 30, 1],
      [Number.MAX_SAFE_INTEGER, 1],
    ]) {
      expectCode(() => new Model({ inputs, outputs, backend }), "MEMORY", `${inputs} × ${outputs}`);
      // Model.from with such sizes cannot even be given the arrays: SHAPE.
      expectCode(() => Model.from({ inputs, outputs, w: [1], backend }), "SHAPE", `from ${inputs} × ${outputs}`);
    }
    for (const [inputs, outputs] of [
      [0, 1],
      [1.5, 2],
      [-1, 3],
      [NaN, 1],
      [Infinity, 1],
    ]) {
      expectCode(() => new Model({ inputs, outputs, backend }), "SHAPE", `${inputs} × ${outputs}`);
    }
    f.intact("after oversized models", before);
    f.done();
  });

  it("batches beyond what the core can address: MEMORY (or SHAPE), before any allocation", () => {
    const f = fixture(backend);
    const before = memoryBytes(backend);
    for (const batch of [2 ** 28, 2 ** 31, 2 ** 53, 1e308])
      expectCode(() => f.m.input(batch), "MEMORY", `input(${batch})`);
    for (const batch of [0, -1, 1.5, NaN, Infinity]) expectCode(() => f.m.input(batch), "SHAPE", `input(${batch})`);
    // A real array (16 MiB) whose batch needs more than the core can address for its results:
    // 4 Mi rows × 64 outputs × 5 work arrays > 2^30 floats.
    const wide = new Model({ inputs: 1, outputs: 64, backend });
    const wideOpt = new SGD(wide, { lr: 0.1 });
    const x = new Float32Array(2 ** 22);
    const mem = memoryBytes(backend);
    for (const call of [() => wide.forward(x), () => wide.entropy(x), () => wide.gradients(x), () => wideOpt.step(x)]) {
      expectCode(call, "MEMORY", "a 4 Mi-row batch of 64 outputs");
    }
    expect(memoryBytes(backend)).toBe(mem);
    expect(Number.isFinite(wide.entropy(new Float32Array(9).fill(0.3)))).toBe(true);
    wide.dispose();
    f.intact("after oversized batches", before);
    // And a batch that does fit still works afterwards.
    expect(f.m.forward(new Float32Array(6 * 300).fill(0.1)).z.length).toBe(4 * 300);
    f.done();
  });
});

describe("growing to the limit of WebAssembly memory (child process, wasm-simd)", () => {
  it("batches the core cannot grow to: MEMORY, the model keeps working, and memory is reusable after dispose", () => {
    const dist = new URL("../dist/index.js", import.meta.url).href;
    const script = `
      import { init, Model, memoryBytes } from ${JSON.stringify(dist)};
      await init();
      const backend = "wasm-simd";
      const m = new Model({ inputs: 1024, outputs: 16, seed: 1, backend });
      const x = new Float32Array(1024 * 4).map((_, k) => Math.cos(k));
      const z0 = JSON.stringify(Array.from(m.forward(x).z));
      const w0 = JSON.stringify(Array.from(m.w.slice(0, 64)));
      const codes = {};
      const held = [];
      const attempt = (label, fn) => {
        try {
          held.push(fn());
          codes[label] = "ok";
        } catch (e) {
          codes[label] = e.code;
        }
      };
      // R rows of 1024 inputs cost about 2 × 1024 floats a row in the core: the staging block
      // (x, targets) and the work block, whose packing scratch holds x again in the weight
      // gradient's strips (wasm cores; issue 3). R = 180000: ~1.54 GB a model. One more row
      // tries the doubled capacity first (~3.1 GB more: memory cannot grow that far), then
      // exactly the batch, which fits.
      const R = 180000;
      attempt("R", () => m.input(R));
      attempt("R + 1 row", () => m.input(R + 1));
      attempt("2 GiB", () => m.input(2 ** 19 + 5));
      // More models of R/2 rows each (staging views are kept) until memory cannot grow (a model
      // of R rows would not fit beside m's R + 1 rows and the holes its growth left).
      const models = [];
      let fitted = 0;
      for (let k = 0; k < 8; k++) {
        const mk = new Model({ inputs: 1024, outputs: 16, seed: 1, backend });
        models.push(mk);
        try {
          held.push(mk.input(R / 2));
          fitted++;
        } catch (e) {
          codes.exhausted = e.code;
          break;
        }
      }
      const peak = memoryBytes(backend);
      const same = JSON.stringify(Array.from(m.forward(x).z)) === z0 && JSON.stringify(Array.from(m.w.slice(0, 64))) === w0;
      for (const mk of models) mk.dispose();
      const again = new Model({ inputs: 1024, outputs: 16, seed: 1, backend });
      const rows = again.input(R / 2).length / 1024;
      console.log(JSON.stringify({ codes, fitted, peak, same, rows, grewAfterReuse: memoryBytes(backend) > peak }));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const o = JSON.parse(lastLine(r.stdout));
    expect(o.codes, JSON.stringify(o)).toEqual({ R: "ok", "R + 1 row": "ok", "2 GiB": "MEMORY", exhausted: "MEMORY" });
    expect(o.fitted, "another model of R/2 rows fits before memory is exhausted").toBeGreaterThan(0);
    expect(o.peak).toBeLessThanOrEqual(2 ** 32);
    expect(o.same, "the model is unchanged and works").toBe(true);
    expect(o.rows).toBe(90000);
    expect(o.grewAfterReuse, "freed memory is reused").toBe(false);
  }, 150_000);
});

void ({} as AnyModel);
