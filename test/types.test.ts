// The published types (dist/index.d.ts) against docs/api.md. These checks act at compile time
// (`npm run typecheck`, tsc --noEmit); at run time they are no-ops. A tsc error in this file is a
// .d.ts that disagrees with the contract.
import { describe, expectTypeOf, it } from "vitest";
import { Model, SGD } from "entrograd";

describe("published types", () => {
  it("match docs/api.md", () => {
    const m = new Model({ inputs: 2, outputs: 1, backend: "js" });
    const x = new Float32Array(2);
    expectTypeOf(m.entropy(x)).toEqualTypeOf<number>();
    expectTypeOf(m.entropy(x, { reduction: "sum" })).toEqualTypeOf<number>();
    // "none" returns the batch × outputs per-unit entropies.
    expectTypeOf(m.entropy(x, { reduction: "none" })).toEqualTypeOf<Float32Array>();
    expectTypeOf(m.gradients(x).loss).toEqualTypeOf<number>();
    expectTypeOf(m.gradients(x, { reduction: "none" }).loss).toEqualTypeOf<Float32Array>();
    expectTypeOf(m.gradients(x, { reduction: "none" }).entropy).toEqualTypeOf<Float32Array>();
    expectTypeOf(m.w).toEqualTypeOf<Float32Array>();
    expectTypeOf(m.forward(x).z).toEqualTypeOf<Float32Array>();
    // `using m = new Model(...)`.
    expectTypeOf(m).toMatchTypeOf<Disposable>();
    // save() and Model.load(bytes, { backend? }).
    expectTypeOf(m).toHaveProperty("save");
    expectTypeOf(Model).toHaveProperty("load");
    const opt = new SGD(m, { lr: 0.1 });
    expectTypeOf(opt.step(x).loss).toEqualTypeOf<number>();
    expectTypeOf(opt.lr).toEqualTypeOf<number>();
    m.dispose();
  });
});
