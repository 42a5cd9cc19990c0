// Issue 12, "every hostile input a typed error": one regression test per cause an attacker's
// probes found (each failed on the main of the time), on every backend where it applies.
// Causes 1 and 2 (views held past dispose()) and the subnormal bullet are handled elsewhere.
import { beforeAll, describe, expect, it } from "vitest";
import {
  Adam,
  Adapter,
  EntrogradError,
  ExponentialLR,
  fit,
  init,
  Model,
  SGD,
  StepLR,
  type LossOptions,
} from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, batchX, bits, expectCode, snapshot, targetsFor } from "./helpers";

beforeAll(async () => {
  await init();
});

type AnyModel = InstanceType<typeof Model>;
type AnyOpt = InstanceType<typeof SGD> | InstanceType<typeof Adam>;

const I = 4;
const O = 3;
const B = 5;
const rng = new ref.Rng(12);
const W = Array.from(rng.floats(I * O, -1, 1));
const BIAS = Array.from(rng.floats(O, -0.5, 0.5));
const X = batchX(rng, B, I);
const Y = targetsFor(rng, B * O);

/** Parameters and optimizer state, as bits, to compare two runs exactly. */
function state(m: AnyModel, opt: AnyOpt | null) {
  const s = opt === null ? null : opt.stateDict();
  return {
    ...snapshot(m),
    opt: s === null ? null : JSON.stringify(s, (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v)),
  };
}

/** Two identical models (each with an SGD with momentum), to run a call and its expected
 *  equivalent side by side. */
function twins(backend: Backend, make: (m: AnyModel) => AnyOpt = (m) => new SGD(m, { lr: 0.3, momentum: 0.9 })) {
  const one = () => {
    const m = Model.from({ inputs: I, outputs: O, w: W, b: BIAS, backend });
    return { m, opt: make(m) };
  };
  return [one(), one()] as const;
}

/** The error a call throws (undefined when it returns). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

// ---- 3. re-entrancy: a getter that calls back into the package --------------------------------

describe.each(BACKENDS)("3. re-entered calls behave as the two calls in sequence, on %s", (backend) => {
  // The outer call's options, with one getter that first runs an inner step (default options).
  const CE_SUM = { reduction: "sum", objective: { crossEntropy: 1 }, targets: Y } as const;
  /** Places where a getter can sit in the outer step's options. */
  const places: [string, (inner: () => void) => LossOptions][] = [
    [
      "targets",
      (inner) => ({
        reduction: "sum",
        objective: { crossEntropy: 1 },
        get targets() {
          inner();
          return Y;
        },
      }),
    ],
    [
      "reduction",
      (inner) => ({
        get reduction() {
          inner();
          return "sum" as const;
        },
        objective: { crossEntropy: 1 },
        targets: Y,
      }),
    ],
    [
      "objective",
      (inner) => ({
        reduction: "sum",
        get objective() {
          inner();
          return { crossEntropy: 1 };
        },
        targets: Y,
      }),
    ],
    [
      "objective.crossEntropy",
      (inner) => ({
        reduction: "sum",
        objective: {
          get crossEntropy() {
            inner();
            return 1;
          },
        },
        targets: Y,
      }),
    ],
  ];

  for (const [place, options] of places)
    it(`opt.step with a getter (${place}) that steps the same optimizer`, () => {
      const [a, b] = twins(backend);
      let inner = 0;
      const outer = a.opt.step(
        X,
        options(() => {
          if (inner++ === 0) a.opt.step(X);
        }),
      );
      expect(inner, "the getter ran once").toBe(1);
      b.opt.step(X);
      const seq = b.opt.step(X, CE_SUM);
      expect(outer.loss, "the outer step's loss").toBe(seq.loss);
      expect(state(a.m, a.opt)).toEqual(state(b.m, b.opt));
      a.m.dispose();
      b.m.dispose();
    });

  it("opt.step with an adapt getter that steps: the two steps in sequence", () => {
    const [a, b] = twins(backend);
    const adapt = { maxEntropy: 2, diversity: 0.5, prior: 0.5 };
    const outer = a.opt.step(X, {
      reduction: "sum",
      get adapt() {
        a.opt.step(X, CE_SUM);
        return adapt;
      },
    });
    b.opt.step(X, CE_SUM);
    const seq = b.opt.step(X, { reduction: "sum", adapt });
    expect(outer.loss).toBe(seq.loss);
    expect(state(a.m, a.opt)).toEqual(state(b.m, b.opt));
    a.m.dispose();
    b.m.dispose();
  });

  it("a Float32Array subclass whose length getter steps does not mix the calls", () => {
    const [a, b] = twins(backend);
    let armed = true,
      inner = 0;
    class Sneaky extends Float32Array {
      override get length(): number {
        if (armed) {
          armed = false;
          inner++;
          a.opt.step(X);
        }
        return super.length;
      }
    }
    const outer = a.opt.step(new Sneaky(X), CE_SUM);
    // Whether the getter runs at all is the package's business; what it must not do is mix.
    for (let k = 0; k < inner; k++) b.opt.step(X);
    const seq = b.opt.step(X, CE_SUM);
    expect(outer.loss).toBe(seq.loss);
    expect(state(a.m, a.opt)).toEqual(state(b.m, b.opt));
    a.m.dispose();
    b.m.dispose();
  });

  it("m.gradients with a getter that runs other calls on the model: its own options' result", () => {
    const m = Model.from({ inputs: I, outputs: O, w: W, b: BIAS, backend });
    const want = m.gradients(X, CE_SUM);
    const wantBits = { loss: want.loss, dw: bits(want.dw), db: bits(want.db) };
    const got = m.gradients(X, {
      reduction: "sum",
      objective: { crossEntropy: 1 },
      get targets() {
        m.gradients(X, { reduction: "mean", adapt: { diversity: 1, prior: 0.5 } });
        m.forward(batchX(new ref.Rng(3), 300, I)); // grows the batch
        return Y;
      },
    });
    expect({ loss: got.loss, dw: bits(got.dw), db: bits(got.db) }).toEqual(wantBits);
    expect(m.entropy(X, { reduction: "sum" })).toBe(
      m.entropy(X, {
        get reduction() {
          m.entropy(X, { reduction: "none" });
          return "sum" as const;
        },
      }),
    );
    m.dispose();
  });

  it("a getter that disposes the model: DISPOSED, nothing run", () => {
    const [a] = twins(backend);
    const e = thrown(() =>
      a.opt.step(X, {
        get reduction() {
          a.m.dispose();
          return "sum" as const;
        },
      }),
    );
    expect(e).toBeInstanceOf(EntrogradError);
    expect((e as EntrogradError).code).toBe("DISPOSED");
  });
});

// ---- 4. Adapter with another model's optimizer ---------------------------------------------

describe.each(BACKENDS)("4. Adapter refuses an optimizer of another model, on %s", (backend) => {
  it("new Adapter(m1, new SGD(m2)) is OPTION, as fit() is", async () => {
    const m1 = new Model({ inputs: I, outputs: O, backend });
    const m2 = new Model({ inputs: I, outputs: O, backend });
    const opt2 = new SGD(m2, { lr: 0.1 });
    expectCode(() => new Adapter(m1, opt2), "OPTION", "Adapter(m1, SGD(m2))");
    // An object that merely has step() and reset() is not an optimizer of m1 either.
    expectCode(() => new Adapter(m1, { step: () => ({ loss: 0, entropy: 0 }), reset() {} } as never), "OPTION");
    await expect(fit(m1, opt2, X)).rejects.toMatchObject({ code: "OPTION" });
    new Adapter(m2, opt2).step(X); // its own model's optimizer is fine
    m1.dispose();
    m2.dispose();
  });
});

// ---- 5. errors that were not EntrogradError ----------------------------------------------------

/** safetensors bytes from a header given as text (so it can hold duplicate keys) and the data. */
function fileFrom(header: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
const tensor = (dtype: string, shape: number[], begin: number, end: number) =>
  `{"dtype":${dtype},"shape":${JSON.stringify(shape)},"data_offsets":[${begin},${end}]}`;
/** A 2 × 3 model's data: w, g (24 bytes each), b (8 bytes), all finite. */
const MODEL_DATA = new Uint8Array(56).fill(0x3c);

describe("5. hostile values give EntrogradError, never a TypeError or RangeError", () => {
  it("a 10⁵-deep JSON value as a dtype is FORMAT (Model.load and opt.load)", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const header = `{"w":${tensor(deep, [2, 3], 0, 24)},"g":${tensor('"F32"', [2, 3], 24, 48)},"b":${tensor('"F32"', [2], 48, 56)}}`;
    for (const backend of BACKENDS) {
      expectCode(() => Model.load(fileFrom(header, MODEL_DATA), { backend }), "FORMAT", `${backend} Model.load`);
      const m = new Model({ inputs: 3, outputs: 2, backend });
      const opt = new SGD(m, { lr: 0.1, momentum: 0.9 });
      const meta = '"__metadata__":{"format":"entrograd-optimizer","version":"1","type":"SGD","lr":"0.1"}';
      const file = fileFrom(`{${meta},"w.momentum_buffer":${tensor(deep, [2, 3], 0, 24)}}`, new Uint8Array(24));
      const before = state(m, opt);
      expectCode(() => opt.load(file), "FORMAT", `${backend} opt.load`);
      expect(state(m, opt)).toEqual(before);
      m.dispose();
    }
  });

  it("detached buffers as files are FORMAT", () => {
    const bytes = new Model({ inputs: 3, outputs: 2, backend: "js" }).save();
    const detach = (b: ArrayBuffer) => structuredClone(b, { transfer: [b] });
    for (const make of [
      () => {
        const b = bytes.slice().buffer;
        detach(b);
        return b;
      },
      () => {
        const u = bytes.slice();
        detach(u.buffer);
        return u;
      },
      () => {
        const d = new DataView(bytes.slice().buffer);
        detach(d.buffer as ArrayBuffer);
        return d;
      },
    ]) {
      expectCode(() => Model.load(make() as never), "FORMAT", "Model.load");
      const m = new Model({ inputs: 3, outputs: 2, backend: "js" });
      expectCode(() => new SGD(m).load(make() as never), "FORMAT", "opt.load");
    }
  });

  it.each(BACKENDS)("proxies, revoked proxies and fake typed arrays as x or targets are OPTION (%s)", (backend) => {
    const [a] = twins(backend);
    const before = state(a.m, a.opt);
    const revocable = Proxy.revocable(X.slice(), {});
    revocable.revoke();
    const fakes: [string, unknown][] = [
      ["a Proxy of a Float32Array", new Proxy(X.slice(), {})],
      ["a revoked Proxy", revocable.proxy],
      ["an object with Float32Array's prototype", Object.setPrototypeOf({ length: X.length }, Float32Array.prototype)],
    ];
    for (const [label, fake] of fakes) {
      for (const [call, fn] of [
        ["forward", () => a.m.forward(fake as Float32Array)],
        ["entropy", () => a.m.entropy(fake as Float32Array)],
        ["gradients", () => a.m.gradients(fake as Float32Array)],
        ["step", () => a.opt.step(fake as Float32Array)],
        ["targets", () => a.opt.step(X, { objective: { crossEntropy: 1 }, targets: fake as Float32Array })],
      ] as const)
        expectCode(fn, "OPTION", `${call}: ${label}`);
    }
    expect(state(a.m, a.opt)).toEqual(before);
    a.m.dispose();
  });

  it.each(BACKENDS)("an x whose element getter disposes the model mid-copy: an EntrogradError (%s)", (backend) => {
    const [a] = twins(backend);
    const x = new Proxy(X.slice(), {
      get(t, k) {
        if (k === "3") a.m.dispose();
        const v = Reflect.get(t, k, t);
        return typeof v === "function" ? v.bind(t) : v;
      },
    });
    const e = thrown(() => a.opt.step(x));
    expect(e, String(e)).toBeInstanceOf(EntrogradError);
    expect(["OPTION", "DISPOSED"]).toContain((e as EntrogradError).code);
    if (!a.m.disposed) a.m.dispose();
  });

  it("objects made with Model's or an optimizer's prototype are OPTION", async () => {
    const fakeModel = Object.create(Model.prototype) as AnyModel;
    const m = new Model({ inputs: I, outputs: O, backend: "js" });
    const opt = new SGD(m);
    const fakeOpt = Object.create(SGD.prototype) as InstanceType<typeof SGD>;
    expectCode(() => new SGD(fakeModel), "OPTION", "SGD");
    expectCode(() => new Adam(fakeModel), "OPTION", "Adam");
    expectCode(() => new Adapter(fakeModel, opt), "OPTION", "Adapter model");
    expectCode(() => new Adapter(m, fakeOpt), "OPTION", "Adapter optimizer");
    expectCode(() => new StepLR(fakeOpt, { stepSize: 1 }), "OPTION", "StepLR");
    await expect(fit(fakeModel, opt, X)).rejects.toMatchObject({ code: "OPTION" });
    await expect(fit(m, fakeOpt, X)).rejects.toMatchObject({ code: "OPTION" });
    m.dispose();
  });

  it.each(BACKENDS)("getters and proxy traps that throw are OPTION; nothing changes (%s)", async (backend) => {
    const [a] = twins(backend);
    const boom = () => {
      throw new Error("boom");
    };
    const throwing = (key: string) => Object.defineProperty({}, key, { get: boom, enumerable: true });
    const trap = new Proxy({}, { ownKeys: boom, get: boom, getOwnPropertyDescriptor: boom });
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    const before = state(a.m, a.opt);
    const calls: [string, (o: unknown) => unknown][] = [
      ["new Model", (o) => new Model(o as never)],
      ["Model.from", (o) => Model.from(o as never)],
      ["Model.load", (o) => Model.load(a.m.save(), o as never)],
      ["entropy", (o) => a.m.entropy(X, o as never)],
      ["gradients", (o) => a.m.gradients(X, o as never)],
      ["step", (o) => a.opt.step(X, o as never)],
      ["new SGD", (o) => new SGD(a.m, o as never)],
      ["new Adam", (o) => new Adam(a.m, o as never)],
      ["Adapter", (o) => new Adapter(a.m, a.opt, o as never)],
      ["loadStateDict", (o) => a.opt.loadStateDict(o as never)],
      ["StepLR", (o) => new StepLR(a.opt, o as never)],
    ];
    for (const [label, call] of calls) {
      for (const key of ["inputs", "reduction", "lr", "backend", "maxEntropy", "stepSize", "type"])
        expectCode(() => call(throwing(key)), "OPTION", `${label}: a throwing getter ${key}`);
      expectCode(() => call(trap), "OPTION", `${label}: a proxy whose traps throw`);
      expectCode(() => call(revocable.proxy), "OPTION", `${label}: a revoked proxy`);
    }
    for (const nested of [
      { objective: throwing("entropy") },
      { adapt: throwing("diversity") },
      { objective: trap },
      { adapt: revocable.proxy },
    ]) {
      expectCode(() => a.m.gradients(X, nested as never), "OPTION", `gradients ${Object.keys(nested)[0]}`);
      expectCode(() => a.opt.step(X, nested as never), "OPTION", `step ${Object.keys(nested)[0]}`);
    }
    expectCode(() => new SGD(a.m, { groups: { g: throwing("lr") } } as never), "OPTION", "a group's getter");
    expectCode(() => new Adam(a.m, { betas: new Proxy([0.9, 0.99], { get: boom }) } as never), "OPTION", "betas");
    const w = new Proxy(W.slice(), { get: (t, k) => (k === "2" ? boom() : Reflect.get(t, k)) });
    expectCode(() => Model.from({ inputs: I, outputs: O, w, backend } as never), "OPTION", "Model.from w getter");
    await expect(fit(a.m, a.opt, X, throwing("epochs") as never)).rejects.toMatchObject({ code: "OPTION" });
    await expect(fit(a.m, a.opt, X, { signal: throwing("aborted") } as never)).rejects.toMatchObject({
      code: "OPTION",
    });
    expect(state(a.m, a.opt)).toEqual(before);
    a.m.dispose();
  });
});

// ---- 6. duplicate keys ---------------------------------------------------------------------

describe("6. duplicate keys in a safetensors header are FORMAT, state untouched", () => {
  const w = tensor('"F32"', [2, 3], 0, 24),
    g = tensor('"F32"', [2, 3], 24, 48),
    b = tensor('"F32"', [2], 48, 56);
  const cases: [string, string][] = [
    ["a duplicate tensor name", `{"w":${tensor('"F64"', [9], 0, 72)},"w":${w},"g":${g},"b":${b}}`],
    ["the same tensor twice", `{"w":${w},"g":${g},"b":${b},"b":${b}}`],
    [
      "a duplicate key in __metadata__",
      `{"__metadata__":{"format":"entrograd","version":"2","version":"1"},"w":${w},"g":${g},"b":${b}}`,
    ],
    [
      "two __metadata__ objects, the first of an unsupported version",
      `{"__metadata__":{"format":"entrograd","version":"99"},"w":${w},"g":${g},"b":${b},"__metadata__":{"format":"entrograd","version":"1"}}`,
    ],
    ["a duplicate escaped the same way", `{"w":${w},"g":${g},"b":${b},"\\u0062":${b}}`],
  ];
  it.each(BACKENDS)("Model.load (%s)", (backend) => {
    // The same file without the duplicate loads (so it is the duplicate that is refused).
    Model.load(fileFrom(`{"w":${w},"g":${g},"b":${b}}`, MODEL_DATA), { backend }).dispose();
    for (const [label, header] of cases)
      expectCode(() => Model.load(fileFrom(header, MODEL_DATA), { backend }), "FORMAT", label);
  });

  it.each(BACKENDS)("opt.load: a duplicate optimizer tensor changes nothing (%s)", (backend) => {
    const src = new Model({ inputs: 3, outputs: 2, seed: 1, backend });
    const srcOpt = new SGD(src, { lr: 0.5, momentum: 0.9 });
    for (let s = 0; s < 3; s++) srcOpt.step(batchX(new ref.Rng(s), 4, 3));
    const saved = srcOpt.save();
    const n = Number(new DataView(saved.buffer, saved.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(saved.subarray(8, 8 + n))) as Record<string, unknown>;
    const text = JSON.stringify(header);
    const dup = `${text.slice(0, -1)},"w.momentum_buffer":${JSON.stringify(header["w.momentum_buffer"])}}`;
    const dupMeta = `${text.slice(0, -1)},"__metadata__":${JSON.stringify({ ...(header.__metadata__ as object), lr: "0.25" })}}`;
    const m = new Model({ inputs: 3, outputs: 2, seed: 2, backend });
    const opt = new SGD(m, { lr: 0.1, momentum: 0.9 });
    opt.step(X.subarray(0, 6));
    const before = state(m, opt);
    for (const [label, h] of [
      ["duplicate tensor", dup],
      ["duplicate __metadata__", dupMeta],
    ])
      expectCode(() => opt.load(fileFrom(h, saved.subarray(8 + n))), "FORMAT", label);
    expect(state(m, opt)).toEqual(before);
    expect(opt.lr).toBe(0.1);
    opt.load(saved); // the file itself loads
    expect(opt.lr).toBe(0.5);
    src.dispose();
    m.dispose();
  });

  it("tensors that overlap (w and g with the same data_offsets) are FORMAT", () => {
    const header = `{"w":${tensor('"F32"', [2, 3], 0, 24)},"g":${tensor('"F32"', [2, 3], 0, 24)},"b":${tensor('"F32"', [2], 24, 32)}}`;
    for (const backend of BACKENDS)
      expectCode(() => Model.load(fileFrom(header, new Uint8Array(32)), { backend }), "FORMAT", backend);
  });
});

// ---- 7. values beyond float32, and one overflow rule for every backend -----------------------

describe.each(BACKENDS)("7. option values beyond float32 are OPTION, on %s", (backend) => {
  it("optimizer options, the lr setter, state dicts and objective weights", () => {
    const [a] = twins(backend);
    const before = state(a.m, a.opt);
    const bad: [string, () => unknown][] = [
      ["lr 1e300", () => new SGD(a.m, { lr: 1e300 })],
      ["lr 1e39", () => new SGD(a.m, { lr: 1e39 })],
      ["lr 1e-50 (0 as a float32)", () => new SGD(a.m, { lr: 1e-50 })],
      ["weightDecay 1e300", () => new SGD(a.m, { lr: 0.1, weightDecay: 1e300 })],
      ["Adam weightDecay 1e39", () => new Adam(a.m, { weightDecay: 1e39 })],
      ["momentum 1e39", () => new SGD(a.m, { momentum: 1e39 })],
      ["eps 1e39", () => new Adam(a.m, { eps: 1e39 })],
      ["group lr 1e39", () => new SGD(a.m, { groups: { g: { lr: 1e39 } } })],
      ["group weightDecay 4e38", () => new Adam(a.m, { groups: { b: { weightDecay: 4e38 } } })],
      ["maxGradNorm 1e-45", () => new SGD(a.m, { maxGradNorm: 1e-45 })],
      ["lr setter 1e39", () => (a.opt.lr = 1e39)],
      ["lr setter 1e-40", () => (a.opt.lr = 1e-40)],
      ["loadStateDict lr 1e39", () => a.opt.loadStateDict({ ...a.opt.stateDict(), lr: 1e39 } as never)],
      [
        "loadStateDict groupLr 1e300",
        () => a.opt.loadStateDict({ ...a.opt.stateDict(), groupLr: { w: 1e300 } } as never),
      ],
      ["objective entropy 1e300", () => a.m.gradients(X, { objective: { entropy: 1e300 } })],
      ["objective entropy -1e39", () => a.opt.step(X, { objective: { entropy: -1e39 } })],
      ["objective crossEntropy 1e39", () => a.opt.step(X, { objective: { crossEntropy: 1e39 }, targets: Y })],
    ];
    for (const [label, fn] of bad) expectCode(fn, "OPTION", label);
    expect(a.opt.lr).toBe(0.3);
    expect(state(a.m, a.opt)).toEqual(before);
    // The ends of float32's range are fine.
    new SGD(a.m, { lr: 3.4e38, weightDecay: 1.2e-38 });
    a.m.gradients(X, { objective: { entropy: -3.4e38, crossEntropy: 0 } });
    a.m.dispose();
  });

  it("a schedule whose lr leaves float32's range: OPTION beyond it, 0 below it", () => {
    const [a] = twins(backend);
    const up = new ExponentialLR(a.opt, { gamma: 1e20 });
    up.step();
    expect(a.opt.lr).toBeCloseTo(0.3e20, -10);
    expectCode(() => up.step(), "OPTION", "lr 3e39");
    expect(a.opt.lr).toBeCloseTo(0.3e20, -10);
    const [b] = twins(backend);
    const down = new ExponentialLR(b.opt, { gamma: 1e-20 });
    down.step();
    down.step();
    expect(b.opt.lr).toBe(0); // 3e-41 is below float32's normal range: 0, as the cores hold it
    b.opt.load(b.opt.save()); // and what the optimizer holds, its file holds
    a.m.dispose();
    b.m.dispose();
  });
});

describe("7. partway overflow: one rule for every backend", () => {
  // x·(W+G)ᵀ with x near the float32 limit and weights of both signs: the float32 cores overflow
  // partway through the dot product; the exact result (0 here) fits. Every backend returns it.
  it("forward: the exact z on every backend when only a partial sum overflows", () => {
    const x = Float32Array.of(2 ** 127, 2 ** 127, 2 ** 127);
    const out = BACKENDS.map((backend) => {
      const m = Model.from({ inputs: 3, outputs: 2, w: [1, 1, -2, 0.5, 0.5, -1], b: [0, 0.25], backend });
      const e = thrown(() => m.forward(x));
      const z = e === undefined ? Array.from(m.forward(x).z) : String(e);
      m.dispose();
      return z;
    });
    expect(out[0]).toEqual([0, 0.25]);
    for (const o of out) expect(o).toEqual(out[0]);
  });

  it("a cross-entropy step there: the same outcome and the same parameters on every backend", () => {
    // Every product exact and x₀w₀ + x₂w₂ (one lane's partial sum in the cores' order) past the
    // float32 limit; z = 0 exactly, so D = 0.5 and against a target of 0 the gradient is
    // 0.72·x ≈ 2.45e38: finite. (Weights whose products round, such as 0.75, leave a float32 core
    // a z of ±2¹⁰³ without overflowing, within rounding of the limit: see docs/api.md, Overflow.)
    const x = new Float32Array(4).fill(3.4e38);
    const out = BACKENDS.map((backend) => {
      const m = Model.from({ inputs: 4, outputs: 1, w: [1, -1, 1, -1], backend });
      const opt = new SGD(m, { lr: 0.1 });
      const e = thrown(() => opt.step(x, { objective: { crossEntropy: 1 }, targets: Float32Array.of(0) }));
      const r = { error: e === undefined ? null : String(e), w: Array.from(m.w) };
      m.dispose();
      return r;
    });
    expect(out[0].error).toBeNull();
    for (const o of out) expect(o).toEqual(out[0]);
  });
});

// ---- 8. smaller ones -------------------------------------------------------------------------

describe.each(BACKENDS)("8. smaller ones on %s", (backend) => {
  it("a Float32Array subclass whose buffer/byteOffset getters lie is copied like any other x", () => {
    const [a, b] = twins(backend);
    const staging = a.m.input(B);
    staging.fill(0.5); // stale data the step must not use
    class Liar extends Float32Array {
      override get buffer(): ArrayBuffer {
        return staging.buffer as ArrayBuffer;
      }
      override get byteOffset(): number {
        return staging.byteOffset;
      }
    }
    const got = a.opt.step(new Liar(X));
    const want = b.opt.step(X);
    expect(got.loss).toBe(want.loss);
    expect(state(a.m, a.opt)).toEqual(state(b.m, b.opt));
    a.m.dispose();
    b.m.dispose();
  });

  it("opt.lr = undefined and opt.maxGradNorm = undefined are OPTION", () => {
    const [a] = twins(backend);
    expectCode(() => (a.opt.lr = undefined as never), "OPTION", "lr");
    expectCode(() => (a.opt.maxGradNorm = undefined as never), "OPTION", "maxGradNorm");
    expect(a.opt.lr).toBe(0.3);
    a.m.dispose();
  });

  it("a negative exp_avg_sq: FORMAT in a file, OPTION in a state dict", () => {
    const [a] = twins(backend, (m) => new Adam(m, { lr: 0.01 }));
    const opt = a.opt as InstanceType<typeof Adam>;
    opt.step(X);
    const sd = opt.stateDict();
    const bad = structuredClone(sd);
    (bad.state.g.expAvgSq as Float32Array)[1] = -1e-3;
    const before = state(a.m, a.opt);
    expectCode(() => opt.loadStateDict(bad), "OPTION", "state dict");
    // The file: a good one, with one value made negative.
    const [t] = twins(backend, (m) => new Adam(m, { lr: 0.01 }));
    (t.opt as InstanceType<typeof Adam>).loadStateDict(sd);
    const file = t.opt.save();
    const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<
      string,
      { data_offsets: [number, number] }
    >;
    const p = 8 + n + header["g.exp_avg_sq"].data_offsets[0] + 4;
    new DataView(file.buffer, file.byteOffset).setFloat32(p, -1e-3, true);
    expectCode(() => a.opt.load(file), "FORMAT", "file");
    expect(state(a.m, a.opt)).toEqual(before);
    a.m.dispose();
    t.m.dispose();
  });

  it("optimizer metadata numbers: only the decimal forms the writer produces", () => {
    const [a] = twins(backend);
    a.opt.step(X);
    const file = a.opt.save();
    const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, unknown>;
    const meta = header.__metadata__ as Record<string, string>;
    const before = state(a.m, a.opt);
    for (const [key, v] of [
      ["lr", "0x10"],
      ["lr", "1e-50"],
      ["lr", " 0.3"],
      ["lr", "0.30"],
      ["lr", "3e-1"],
      ["lr", "+0.3"],
      ["lr", "Infinity"],
      ["steps", "1.0"],
      ["steps", "0b1"],
      ["steps", "1e0"],
    ]) {
      const h = JSON.stringify({ ...header, __metadata__: { ...meta, [key]: v } });
      expectCode(() => a.opt.load(fileFrom(h, file.subarray(8 + n))), "FORMAT", `${key} ${JSON.stringify(v)}`);
    }
    expect(state(a.m, a.opt)).toEqual(before);
    a.opt.load(file);
    a.m.dispose();
  });
});
