// The published types (dist/index.d.ts) against docs/api.md. expectTypeOf acts at compile time only,
// so the last test compiles this file with the project's tsconfig (the TypeScript compiler API)
// and requires no error: a .d.ts that disagrees with the contract fails the test run, not only
// `npm run typecheck`. Each type check also has its run-time twin.
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, expectTypeOf, it } from "vitest";
import { Model, SGD } from "entrograd";

describe("published types", () => {
  it("match docs/api.md (and the values have those types at run time)", () => {
    const m = new Model({ inputs: 2, outputs: 1, backend: "js" });
    const x = new Float32Array(2);
    expectTypeOf(m.entropy(x)).toEqualTypeOf<number>();
    expect(typeof m.entropy(x)).toBe("number");
    expectTypeOf(m.entropy(x, { reduction: "sum" })).toEqualTypeOf<number>();
    expect(typeof m.entropy(x, { reduction: "sum" })).toBe("number");
    // "none" returns the batch × outputs per-unit entropies.
    expectTypeOf(m.entropy(x, { reduction: "none" })).toEqualTypeOf<Float32Array>();
    expect(m.entropy(x, { reduction: "none" })).toBeInstanceOf(Float32Array);
    expectTypeOf(m.gradients(x).loss).toEqualTypeOf<number>();
    expect(typeof m.gradients(x).loss).toBe("number");
    expectTypeOf(m.gradients(x, { reduction: "none" }).loss).toEqualTypeOf<Float32Array>();
    expect(m.gradients(x, { reduction: "none" }).loss).toBeInstanceOf(Float32Array);
    expectTypeOf(m.gradients(x, { reduction: "none" }).entropy).toEqualTypeOf<Float32Array>();
    expect(m.gradients(x, { reduction: "none" }).entropy).toBeInstanceOf(Float32Array);
    expectTypeOf(m.w).toEqualTypeOf<Float32Array>();
    expect(m.w).toBeInstanceOf(Float32Array);
    expectTypeOf(m.forward(x).z).toEqualTypeOf<Float32Array>();
    expect(m.forward(x).z).toBeInstanceOf(Float32Array);
    // `using m = new Model(...)`.
    expectTypeOf(m).toMatchTypeOf<Disposable>();
    const dispose = (Symbol as unknown as { dispose?: symbol }).dispose ?? Symbol.for("Symbol.dispose");
    expect(typeof (m as unknown as Record<symbol, unknown>)[dispose]).toBe("function");
    // save() and Model.load(bytes, { backend? }).
    expectTypeOf(m).toHaveProperty("save");
    expectTypeOf(Model).toHaveProperty("load");
    expect(m.save()).toBeInstanceOf(Uint8Array);
    expect(Model.load(m.save(), { backend: "js" })).toBeInstanceOf(Model);
    const opt = new SGD(m, { lr: 0.1 });
    expectTypeOf(opt.step(x).loss).toEqualTypeOf<number>();
    expect(typeof opt.step(x).loss).toBe("number");
    expectTypeOf(opt.lr).toEqualTypeOf<number>();
    expect(opt.lr).toBe(0.1);
    m.dispose();
  });

  it("this file type-checks against the published .d.ts (the expectTypeOf checks above hold)", () => {
    const file = fileURLToPath(import.meta.url);
    const root = fileURLToPath(new URL("..", import.meta.url));
    const config = ts.readConfigFile(`${root}tsconfig.json`, ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    const program = ts.createProgram([file], { ...parsed.options, noEmit: true });
    const errors = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.category === ts.DiagnosticCategory.Error)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    expect(errors).toEqual([]);
  }, 60_000);
});
