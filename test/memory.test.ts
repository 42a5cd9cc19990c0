// Zero-copy views: writes through m.w / m.g / m.b, staged batches, and views across memory growth.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD, memoryBytes } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, batchX, bits, expectClose, paramsOf, perUnit, tolerances } from "./helpers";

beforeAll(async () => {
  await init();
});

function small(backend: Backend, seed = 3) {
  const rng = new ref.Rng(seed);
  const m = Model.from({
    inputs: 4,
    outputs: 3,
    w: rng.floats(12, -1, 1),
    g: rng.floats(12, -0.3, 0.3),
    b: rng.floats(3, -0.5, 0.5),
    backend,
  });
  return { m, x: batchX(rng, 5, 4) };
}

/** The model's forward z agrees with the reference at the model's current parameters. */
function expectForwardMatches(m: InstanceType<typeof Model>, x: Float32Array, label: string) {
  const p = paramsOf(m);
  const e = ref.evaluate(p, x);
  expectClose(Array.from(m.forward(x).z), e.z, tolerances(p, x, e).z, label);
}

describe.each(BACKENDS)("zero-copy on %s", (backend) => {
  for (const k of ["w", "g", "b"] as const)
    it(`a write through m.${k} changes the next forward`, () => {
      const { m, x } = small(backend);
      const z0 = Array.from(m.forward(x).z);
      const view = m[k];
      view[1] += 0.75;
      const written = view[1];
      expect(m[k][1], "a fresh read sees the write").toBe(written);
      const z1 = Array.from(m.forward(x).z);
      expect(z1).not.toEqual(z0);
      // The change is exactly the one the write implies (reference at the written parameters).
      expectForwardMatches(m, x, `${backend} forward after writing ${k}`);
      m.dispose();
    });

  it("a batch staged in m.input(batch) gives the same results as a separate array", () => {
    const { m, x } = small(backend);
    const staged = m.input(5);
    expect(staged).toBeInstanceOf(Float32Array);
    expect(staged.length).toBe(5 * 4);
    staged.set(x);
    const fz = Array.from(bits(m.forward(staged).z));
    const fd = Array.from(bits(m.forward(staged).d));
    expect(fz).toEqual(Array.from(bits(m.forward(x).z)));
    expect(fd).toEqual(Array.from(bits(m.forward(x).d)));
    const hs = perUnit(m.entropy(staged, { reduction: "none" })).slice();
    expect(Array.from(bits(hs))).toEqual(Array.from(bits(perUnit(m.entropy(x, { reduction: "none" })))));
    const gs = m.gradients(staged);
    const gsw = Array.from(bits(gs.dw));
    const gsb = Array.from(bits(gs.db));
    const gx = m.gradients(x);
    expect(gsw).toEqual(Array.from(bits(gx.dw)));
    expect(gsb).toEqual(Array.from(bits(gx.db)));
    m.dispose();
  });

  it("steps on a staged batch equal steps on a separate array", () => {
    const a = small(backend, 9);
    const b = small(backend, 9);
    const oa = new SGD(a.m, { lr: 0.1, momentum: 0.5 });
    const ob = new SGD(b.m, { lr: 0.1, momentum: 0.5 });
    const staged = a.m.input(5);
    for (let s = 0; s < 5; s++) {
      staged.set(a.x);
      const la = oa.step(staged).loss;
      const lb = ob.step(b.x).loss;
      expect(la).toBe(lb);
    }
    for (const k of ["w", "g", "b"] as const) expect(Array.from(bits(a.m[k]))).toEqual(Array.from(bits(b.m[k])));
    a.m.dispose();
    b.m.dispose();
  });

  if (backend !== "js")
    it("the staging view and the parameters live in the core's memory", () => {
      const { m } = small(backend);
      const staged = m.input(5);
      expect(staged.buffer).toBe(m.w.buffer);
      m.dispose();
    });
});

describe.each(BACKENDS)("changing batch sizes and several models on %s", (backend) => {
  it("one model through batches of 1, 300, 2, 1000, 5: every result right", () => {
    const rng = new ref.Rng(61);
    const m = Model.from({ inputs: 6, outputs: 5, w: rng.floats(30, -0.5, 0.5), b: rng.floats(5, -0.5, 0.5), backend });
    for (const batch of [1, 300, 2, 1000, 5]) {
      const x = batchX(rng, batch, 6);
      const p = paramsOf(m);
      const e = ref.evaluate(p, x, { reduction: "sum" });
      const t = tolerances(p, x, e, { reduction: "sum" });
      expectClose(Array.from(m.forward(x).z), e.z, t.z, `batch ${batch} z`);
      const r = m.gradients(x, { reduction: "sum" });
      expectClose(Array.from(r.dw), e.dw, t.dw, `batch ${batch} dw`);
      expectClose(Array.from(r.db), e.db, t.db, `batch ${batch} db`);
      const staged = m.input(batch);
      staged.set(x);
      expectClose(
        perUnit(m.entropy(staged, { reduction: "none" })),
        e.unitEntropy,
        t.unitEntropy,
        `batch ${batch} staged entropy`,
      );
    }
    m.dispose();
  });

  it("results of one model are not overwritten by calls on another", () => {
    const a = small(backend, 1);
    const b = small(backend, 2);
    const ra = a.m.gradients(a.x);
    const dwa = Array.from(bits(ra.dw));
    const dba = Array.from(bits(ra.db));
    b.m.forward(b.x);
    b.m.gradients(b.x);
    new SGD(b.m, { lr: 0.1 }).step(b.x);
    // a's views stay valid until the next call on a (a growth of memory would detach them,
    // length 0; these small models do not grow it).
    expect(Array.from(bits(ra.dw))).toEqual(dwa);
    expect(Array.from(bits(ra.db))).toEqual(dba);
    a.m.dispose();
    b.m.dispose();
  });
});

describe.each(BACKENDS)("views across memory growth on %s", (backend) => {
  it("a held view is detached or still right, never wrong memory; a fresh view is right and writable", () => {
    const { m, x } = small(backend);
    const held = { w: m.w, g: m.g, b: m.b };
    const expected = { w: Array.from(bits(m.w)), g: Array.from(bits(m.g)), b: Array.from(bits(m.b)) };
    const before = memoryBytes(backend);
    const others: InstanceType<typeof Model>[] = [];
    if (backend === "js") {
      expect(before).toBe(0);
      others.push(new Model({ inputs: 1024, outputs: 1024, backend, init: "zeros" }));
    } else {
      expect(before).toBeGreaterThan(0);
      // Each 1024×1024 model holds several 4 MiB blocks; memory must grow within a few.
      for (let k = 0; k < 64 && memoryBytes(backend) === before; k++)
        others.push(new Model({ inputs: 1024, outputs: 1024, backend, init: "zeros" }));
      expect(memoryBytes(backend)).toBeGreaterThan(before);
    }
    for (const k of ["w", "g", "b"] as const) {
      const v = held[k];
      if (v.length !== 0) expect(Array.from(bits(v)), `held ${k} view still right`).toEqual(expected[k]);
    }
    for (const k of ["w", "g", "b"] as const) expect(Array.from(bits(m[k])), `fresh ${k} view`).toEqual(expected[k]);
    // Fresh views are writable and the writes take effect.
    m.w[0] = 2.5;
    m.b[2] = -1.25;
    expect(m.w[0]).toBe(2.5);
    expect(m.b[2]).toBe(-1.25);
    expectForwardMatches(m, x, `${backend} forward after growth and writes`);
    // The other models work too, and writes to one never show in another.
    const big = others[others.length - 1];
    big.w[0] = 1;
    expect(m.w[0]).toBe(2.5);
    expect(Array.from(big.forward(new Float32Array(1024).fill(1)).z.subarray(0, 2))).toEqual([1, 0]);
    for (const o of others) o.dispose();
    m.dispose();
  });
});
