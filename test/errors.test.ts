// Every error code, each thrown as an EntrogradError, leaving the parameters and the optimizer
// state bitwise as they were, and the model usable after.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD, EntrogradError } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, batchX, expectClose, expectCode, paramsOf, snapshot, tolerances } from "./helpers";

beforeAll(async () => {
  await init();
});

const I = 4;
const O = 3;
const B = 5;

/** A model with an SGD whose momentum buffers are already filled, and a checker that every
 *  throw leaves parameters and optimizer state exactly as they were. */
function fixture(backend: Backend) {
  const rng = new ref.Rng(2);
  const m = new Model({ inputs: I, outputs: O, seed: 1, backend });
  m.b.set([0.1, -0.2, 0.3]);
  const opt = new SGD(m, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
  const x = batchX(rng, B, I);
  const targets = rng.floats(B * O, 0, 1);
  opt.step(x);
  opt.step(x, { objective: { crossEntropy: 1 }, targets });
  let params = snapshot(m);
  let state = structuredClone(opt.stateDict());
  /** Takes the current parameters and state as the ones that must not change. */
  const rebase = () => {
    params = snapshot(m);
    state = structuredClone(opt.stateDict());
  };
  const unchanged = (label: string) => {
    const now = snapshot(m);
    for (const k of ["w", "g", "b"] as const)
      expect(Array.from(now[k]), `${label}: ${k} unchanged`).toEqual(Array.from(params[k]));
    expect(opt.stateDict(), `${label}: optimizer state unchanged`).toStrictEqual(state);
  };
  const throws = (fn: () => unknown, code: string, label: string) => {
    expectCode(fn, code, label);
    unchanged(label);
  };
  /** The model and optimizer still work: a forward matching the reference, then a step. */
  const stillWorks = () => {
    const p = paramsOf(m);
    const e = ref.evaluate(p, x);
    expectClose(Array.from(m.forward(x).z), e.z, tolerances(p, x, e).z, "forward after errors");
    const before = Array.from(m.w);
    const r = opt.step(x);
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(Array.from(m.w)).not.toEqual(before);
  };
  return { m, opt, x, targets, throws, unchanged, rebase, stillWorks };
}

describe.each(BACKENDS)("errors on %s", (backend) => {
  it("EntrogradError is an Error with a code", () => {
    const { m, throws } = fixture(backend);
    throws(() => m.forward(new Float32Array(0)), "SHAPE", "empty x");
    let e: unknown;
    try {
      m.forward(new Float32Array(0));
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(EntrogradError);
    expect(typeof (e as EntrogradError).code).toBe("string");
    expect((e as Error).message.length).toBeGreaterThan(0);
    m.dispose();
  });

  it("bad batches: OPTION for a non-Float32Array, SHAPE for bad lengths, NON_FINITE for NaN/±Infinity", () => {
    const f = fixture(backend);
    const { m, opt, throws } = f;
    const calls: [string, (x: unknown) => unknown][] = [
      ["forward", (x) => m.forward(x as Float32Array)],
      ["entropy", (x) => m.entropy(x as Float32Array)],
      ["entropy none", (x) => m.entropy(x as Float32Array, { reduction: "none" })],
      ["gradients", (x) => m.gradients(x as Float32Array)],
      ["step", (x) => opt.step(x as Float32Array)],
    ];
    for (const [name, call] of calls) {
      throws(() => call([1, 2, 3, 4]), "OPTION", `${name}: plain array`);
      throws(() => call(new Float64Array(I * B)), "OPTION", `${name}: Float64Array`);
      throws(() => call(null), "OPTION", `${name}: null`);
      throws(() => call(new Float32Array(0)), "SHAPE", `${name}: empty`);
      throws(() => call(new Float32Array(I * B + 1)), "SHAPE", `${name}: not a multiple of inputs`);
      throws(() => call(new Float32Array(I - 1)), "SHAPE", `${name}: shorter than one sample`);
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = f.x.slice();
        x[x.length - 2] = bad;
        throws(() => call(x), "NON_FINITE", `${name}: ${bad} in x`);
      }
    }
    f.stillWorks();
    m.dispose();
  });

  it("targets: OPTION when missing or outside [0, 1], SHAPE for a wrong length, NON_FINITE for NaN", () => {
    const f = fixture(backend);
    const { m, opt, x, targets, throws } = f;
    const calls: [string, (o: Record<string, unknown>) => unknown][] = [
      ["gradients", (o) => m.gradients(x, o)],
      ["step", (o) => opt.step(x, o)],
    ];
    for (const [name, call] of calls) {
      throws(() => call({ objective: { crossEntropy: 1 } }), "OPTION", `${name}: crossEntropy without targets`);
      throws(() => call({ objective: { entropy: 1, crossEntropy: 0.1 } }), "OPTION", `${name}: mix without targets`);
      throws(
        () => call({ objective: { crossEntropy: 1 }, targets: targets.subarray(1) }),
        "SHAPE",
        `${name}: short targets`,
      );
      throws(
        () => call({ objective: { crossEntropy: 1 }, targets: new Float32Array(targets.length + O) }),
        "SHAPE",
        `${name}: long targets`,
      );
      for (const [bad, code] of [
        [1.5, "OPTION"],
        [-0.1, "OPTION"],
        [NaN, "NON_FINITE"],
        [Infinity, "NON_FINITE"],
      ] as const) {
        const t = targets.slice();
        t[3] = bad;
        throws(() => call({ objective: { crossEntropy: 1 }, targets: t }), code, `${name}: target ${bad}`);
      }
    }
    f.stillWorks();
    m.dispose();
  });

  it("call options: unknown keys, objectives, weights and reductions are OPTION", () => {
    const f = fixture(backend);
    const { m, opt, x, targets, throws } = f;
    throws(() => m.entropy(x, { reductio: "sum" } as never), "OPTION", "entropy: unknown key");
    throws(() => m.entropy(x, { reduction: "avg" } as never), "OPTION", "entropy: unknown reduction");
    const calls: [string, (o: Record<string, unknown>) => unknown][] = [
      ["gradients", (o) => m.gradients(x, o)],
      ["step", (o) => opt.step(x, o)],
    ];
    for (const [name, call] of calls) {
      throws(() => call({ bogus: 1 }), "OPTION", `${name}: unknown key`);
      throws(() => call({ reduction: "avg" }), "OPTION", `${name}: unknown reduction`);
      throws(() => call({ objective: { entropy: 1, bogus: 1 } }), "OPTION", `${name}: unknown objective key`);
      throws(() => call({ objective: { entropy: NaN } }), "OPTION", `${name}: NaN entropy weight`);
      throws(() => call({ objective: { entropy: Infinity } }), "OPTION", `${name}: Infinity entropy weight`);
      throws(() => call({ objective: { crossEntropy: -Infinity }, targets }), "OPTION", `${name}: -Infinity CE weight`);
      throws(() => call({ objective: { entropy: 1, crossEntropy: NaN }, targets }), "OPTION", `${name}: NaN CE weight`);
    }
    throws(() => opt.step(x, { reduction: "none" }), "OPTION", "step with reduction none");
    f.stillWorks();
    m.dispose();
  });

  it("optimizer options: OPTION for bad values, unknown keys and unknown groups; lr setter checked", () => {
    const f = fixture(backend);
    const { m, opt, throws } = f;
    const bad: [string, Record<string, unknown>][] = [
      ["unknown key", { lr: 0.1, bogus: 1 }],
      ["negative lr", { lr: -0.1 }],
      ["NaN lr", { lr: NaN }],
      ["negative momentum", { lr: 0.1, momentum: -0.5 }],
      ["negative weightDecay", { lr: 0.1, weightDecay: -1e-3 }],
      ["dampening < 0", { lr: 0.1, momentum: 0.9, dampening: -0.1 }],
      ["dampening > 1", { lr: 0.1, momentum: 0.9, dampening: 1.5 }],
      ["nesterov without momentum", { lr: 0.1, nesterov: true }],
      ["nesterov with dampening", { lr: 0.1, momentum: 0.9, dampening: 0.5, nesterov: true }],
      ["unknown group", { lr: 0.1, groups: { bias: { lr: 0.1 } } }],
      ["unknown group key", { lr: 0.1, groups: { w: { bogus: 1 } } }],
      ["negative group lr", { lr: 0.1, groups: { g: { lr: -1 } } }],
      ["negative group weightDecay", { lr: 0.1, groups: { b: { weightDecay: -1 } } }],
    ];
    for (const [label, options] of bad) throws(() => new SGD(m, options as never), "OPTION", `SGD: ${label}`);
    const lr = opt.lr;
    throws(() => (opt.lr = -1), "OPTION", "lr setter: negative");
    throws(() => (opt.lr = NaN), "OPTION", "lr setter: NaN");
    expect(opt.lr).toBe(lr);
    f.stillWorks();
    m.dispose();
  });

  it("a non-finite step result is NON_FINITE and writes nothing", () => {
    const f = fixture(backend);
    const { m, opt, throws } = f;
    const x = new Float32Array(I * B).fill(1000);
    const targets = new Float32Array(O * B); // all 0: the cross-entropy gradient cannot vanish
    const lr = opt.lr;
    opt.lr = 1e38;
    f.rebase();
    throws(() => opt.step(x, { objective: { crossEntropy: 1 }, targets }), "NON_FINITE", "lr 1e38 step");
    throws(
      () => opt.step(x, { objective: { crossEntropy: 1 }, targets, reduction: "sum" }),
      "NON_FINITE",
      "lr 1e38 sum step",
    );
    opt.lr = lr;
    f.stillWorks();
    m.dispose();
  });

  it("model options: OPTION for unknown keys and names, SHAPE for sizes that are not positive integers", () => {
    for (const [label, o] of [
      ["unknown key", { inputs: 2, outputs: 2, bogus: 1 }],
      ["unknown backend", { inputs: 2, outputs: 2, backend: "gpu" }],
      ["unknown init", { inputs: 2, outputs: 2, init: "he" }],
    ] as const)
      expectCode(() => new Model({ backend, ...o } as never), "OPTION", label);
    expectCode(
      () => Model.from({ inputs: 2, outputs: 1, w: new Float32Array(2), bogus: 1, backend } as never),
      "OPTION",
      "from: unknown key",
    );
    expectCode(
      () => Model.from({ inputs: 2, outputs: 1, w: new Float32Array(2), backend: "gpu" } as never),
      "OPTION",
      "from: unknown backend",
    );
    for (const bad of [0, -1, 1.5, NaN, Infinity]) {
      expectCode(() => new Model({ inputs: bad, outputs: 2, backend }), "SHAPE", `inputs ${bad}`);
      expectCode(() => new Model({ inputs: 2, outputs: bad, backend }), "SHAPE", `outputs ${bad}`);
      expectCode(
        () => Model.from({ inputs: bad, outputs: 2, w: new Float32Array(2), backend }),
        "SHAPE",
        `from: inputs ${bad}`,
      );
      expectCode(
        () => Model.from({ inputs: 2, outputs: bad, w: new Float32Array(2), backend }),
        "SHAPE",
        `from: outputs ${bad}`,
      );
    }
  });

  it("Model.from: SHAPE for wrong lengths, NON_FINITE for NaN or Infinity", () => {
    const w = new Float32Array(6).fill(0.5);
    expectCode(() => Model.from({ inputs: 3, outputs: 2, w: new Float32Array(5), backend }), "SHAPE", "short w");
    expectCode(() => Model.from({ inputs: 3, outputs: 2, w: new Float32Array(7), backend }), "SHAPE", "long w");
    expectCode(() => Model.from({ inputs: 3, outputs: 2, w, g: new Float32Array(5), backend }), "SHAPE", "short g");
    expectCode(() => Model.from({ inputs: 3, outputs: 2, w, b: new Float32Array(3), backend }), "SHAPE", "long b");
    expectCode(() => Model.from({ inputs: 3, outputs: 2, w, b: new Float32Array(1), backend }), "SHAPE", "short b");
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w2 = w.slice();
      w2[4] = bad;
      expectCode(() => Model.from({ inputs: 3, outputs: 2, w: w2, backend }), "NON_FINITE", `${bad} in w`);
      const g = new Float32Array(6);
      g[0] = bad;
      expectCode(() => Model.from({ inputs: 3, outputs: 2, w, g, backend }), "NON_FINITE", `${bad} in g`);
      const b = new Float32Array(2);
      b[1] = bad;
      expectCode(() => Model.from({ inputs: 3, outputs: 2, w, b, backend }), "NON_FINITE", `${bad} in b`);
    }
    const ok = Model.from({ inputs: 3, outputs: 2, w, backend });
    expect(Array.from(ok.w)).toEqual(Array.from(w));
    expect(Array.from(ok.g)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(ok.b)).toEqual([0, 0]);
    // Model.from copies: changing the source afterwards does not change the model.
    w[0] = 9;
    expect(ok.w[0]).toBe(0.5);
    ok.dispose();
  });

  it("after dispose() every call throws DISPOSED, m.w included", () => {
    const { m, opt, x } = fixture(backend);
    m.dispose();
    expectCode(() => m.forward(x), "DISPOSED", "forward");
    expectCode(() => m.entropy(x), "DISPOSED", "entropy");
    expectCode(() => m.gradients(x), "DISPOSED", "gradients");
    expectCode(() => m.w, "DISPOSED", "m.w");
    expectCode(() => m.g, "DISPOSED", "m.g");
    expectCode(() => m.b, "DISPOSED", "m.b");
    expectCode(() => m.input(1), "DISPOSED", "input");
    expectCode(() => m.clone(), "DISPOSED", "clone");
    expectCode(() => opt.step(x), "DISPOSED", "opt.step");
  });

  it("a model too large for the core is MEMORY, and the package keeps working", () => {
    // 60000×60000 floats are 14.4 GB per matrix: beyond a 32-bit WebAssembly memory (4 GiB).
    // The JS core could in principle allocate them lazily; it is expected to refuse alike.
    expectCode(() => new Model({ inputs: 60000, outputs: 60000, backend }), "MEMORY", "60000×60000");
    expectCode(
      () => new Model({ inputs: 60000, outputs: 60000, init: "zeros", backend }),
      "MEMORY",
      "60000×60000 zeros",
    );
    expectCode(
      () => Model.from({ inputs: 60000, outputs: 60000, w: new Float32Array(1), backend }),
      "SHAPE",
      "Model.from checks w's length before allocating",
    );
    const f = fixture(backend);
    f.stillWorks();
    f.m.dispose();
  });
});
