// ESM and CommonJS entries in real Node processes: both init, train a few steps, and print the
// same numbers. CommonJS runs with require(esm) turned off, so an ES module posing as the CJS
// entry cannot pass.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { lastLine } from "./helpers";

const root = fileURLToPath(new URL("..", import.meta.url));
const distFile = (f: string) => fileURLToPath(new URL(`../dist/${f}`, import.meta.url));

// The same program for both module systems; `pkg` is the loaded package.
const BODY = `
  const name = await pkg.init();
  const x = new Float32Array(24).map((_, i) => Math.sin(1.7 * i));
  const out = { name, backends: {} };
  for (const backend of ["wasm-simd", "wasm", "js"]) {
    const m = new pkg.Model({ inputs: 4, outputs: 3, seed: 7, backend });
    const opt = new pkg.SGD(m, { lr: 0.1, momentum: 0.5 });
    const losses = [];
    for (let s = 0; s < 5; s++) losses.push(opt.step(x).loss);
    out.backends[backend] = { losses, w: Array.from(m.w), b: Array.from(m.b), h: pkg.entropyBits(1.5) };
    m.dispose();
  }
  console.log(JSON.stringify(out));
`;

function run(args: string[]): {
  name: string;
  backends: Record<string, { losses: number[]; w: number[]; b: number[] }>;
} {
  const stdout = execFileSync(process.execPath, args, { cwd: root, encoding: "utf8", timeout: 30_000 });
  return JSON.parse(lastLine(stdout));
}

const cjs = (load: string) =>
  run([
    "--no-experimental-require-module",
    "-e",
    `const pkg = require(${JSON.stringify(load)}); (async () => { ${BODY} })().catch((e) => { console.error(e); process.exit(1); });`,
  ]);
const esm = (load: string) =>
  run(["--input-type=module", "-e", `const pkg = await import(${JSON.stringify(load)}); ${BODY}`]);

describe("module systems", () => {
  it("dist/index.cjs (CommonJS) and dist/index.js (ESM) train to the same numbers", () => {
    expect(existsSync(distFile("index.cjs"))).toBe(true);
    const a = cjs(distFile("index.cjs"));
    const b = esm(pathToFileURL(distFile("index.js")).href);
    expect(a.name).toBe("wasm-simd");
    expect(b).toEqual(a);
    for (const r of Object.values(a.backends)) {
      expect(r.losses.every(Number.isFinite)).toBe(true);
      expect(r.losses[4]).toBeLessThan(r.losses[0]); // training lowers the entropy
    }
  });

  it('the package name resolves through "exports" for require and import alike', () => {
    const a = cjs("entrograd");
    const b = esm("entrograd");
    expect(b).toEqual(a);
  });
});
