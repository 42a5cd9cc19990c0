// `using` (explicit resource management) and Symbol.dispose: disposal at the end of the block,
// DISPOSED after it. esbuild lowers `using` for runtimes without it; Symbol.dispose must exist.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD } from "entrograd";
import { BACKENDS, defined, expectCode } from "./helpers";

beforeAll(async () => {
  await init();
});

describe.runIf(typeof Symbol.dispose === "symbol").each(BACKENDS)("disposal on %s", (backend) => {
  it("`using` disposes at the end of the block; later calls throw DISPOSED", () => {
    let escaped: InstanceType<typeof Model> | undefined;
    let opt: InstanceType<typeof SGD> | undefined;
    const x = new Float32Array([0.5, -1, 2, 0.25]);
    {
      // (The cast: the published .d.ts does not declare Model Disposable yet; see types.test.ts.)
      using m = new Model({ inputs: 2, outputs: 3, seed: 4, backend }) as InstanceType<typeof Model> & Disposable;
      opt = new SGD(m, { lr: 0.1 });
      expect(Number.isFinite(opt.step(x).loss)).toBe(true);
      expect(m.forward(x).z.length).toBe(6);
      escaped = m;
    }
    const model = defined(escaped, "the model used in the block");
    const used = defined(opt, "its optimizer");
    expectCode(() => model.forward(x), "DISPOSED", "forward after using");
    expectCode(() => model.w, "DISPOSED", "m.w after using");
    expectCode(() => used.step(x), "DISPOSED", "opt.step after using");
  });

  it("m[Symbol.dispose]() is dispose()", () => {
    const m = new Model({ inputs: 2, outputs: 2, backend });
    expect(typeof (m as unknown as Record<symbol, unknown>)[Symbol.dispose]).toBe("function");
    (m as unknown as { [Symbol.dispose](): void })[Symbol.dispose]();
    expectCode(() => m.forward(new Float32Array(2)), "DISPOSED", "forward after Symbol.dispose");
    expectCode(() => m.entropy(new Float32Array(2)), "DISPOSED", "entropy after Symbol.dispose");
    expectCode(() => m.b, "DISPOSED", "m.b after Symbol.dispose");
  });
});
