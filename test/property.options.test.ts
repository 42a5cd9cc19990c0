// Fuzzing the public API's arguments (fast-check, 10⁴ cases per property): every entry point fed
// arbitrary JavaScript values (primitives, BigInt, boxed values, Maps, Sets, Dates, typed and
// sparse arrays, null-prototype objects, "__proto__" keys) alone or mixed into valid arguments.
// Invariants: a call either works or throws EntrogradError with a documented code — never a
// TypeError or RangeError from inside — and a call that throws leaves parameters and optimizer
// state bitwise as they were; the model works afterwards.
// Hostile values too (issue 12): proxies (plain, revoked, with traps that throw), getters that
// throw or call back into the package (on a scratch model: a call they make on the model under
// test would change it legitimately; test/property.model.test.ts checks that case), typed-array
// subclasses whose getters lie, detached buffers, lookalikes with Float32Array's prototype.
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import {
  Adam,
  CosineAnnealingLR,
  EntrogradError,
  ExponentialLR,
  LinearLR,
  Model,
  SGD,
  StepLR,
  fit,
  init,
} from "entrograd";
import { BACKENDS, type Backend, bits } from "./helpers";
import { RUNS, check, settings } from "./property.helpers";

beforeAll(async () => {
  await init();
});

const CODES = new Set(["SHAPE", "NON_FINITE", "OPTION", "DISPOSED", "MEMORY", "FORMAT"]);

/** Arbitrary values of every kind fast-check makes, small. */
const anything = fc.anything({
  maxDepth: 2,
  maxKeys: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
});

// ---- hostile values -------------------------------------------------------------------------------

const boom = (): never => {
  throw new Error("boom");
};
/** The model hostile getters call into (never the one under test). */
let scratch: InstanceType<typeof Model> | null = null;
function callBack(k: number): void {
  scratch ??= new Model({ inputs: 2, outputs: 2, seed: 1, backend: "js" });
  if (k % 3 === 0) scratch.forward(new Float32Array(2 * (1 + (k % 5))));
  else if (k % 3 === 1) new SGD(scratch, { lr: 0.01 }).step(new Float32Array(2).fill(0.5));
  else new Model({ inputs: 3, outputs: 1, backend: "js" }).dispose();
}
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/** A value made hostile, k choosing how (an object keeps its keys and values where it can). */
function hostile(v: unknown, k: number): unknown {
  const target = typeof v === "object" && v !== null ? v : {};
  switch (k % 8) {
    case 0:
      return new Proxy(target, {});
    case 1: {
      const r = Proxy.revocable(target, {});
      r.revoke();
      return r.proxy;
    }
    case 2:
      return new Proxy(target, {
        get: boom,
        has: boom,
        ownKeys: boom,
        getOwnPropertyDescriptor: boom,
        getPrototypeOf: boom,
      });
    case 3:
    case 4: {
      // One key's getter throws (3) or calls into the package first (4).
      if (!isRecord(v) || Object.keys(v).length === 0) return v;
      const keys = Object.keys(v);
      const key = keys[k % keys.length];
      const value = v[key];
      return Object.defineProperty({ ...v }, key, {
        enumerable: true,
        get: () => {
          if (k % 8 === 3) boom();
          callBack(k);
          return value;
        },
      });
    }
    case 5:
      if (!(v instanceof Float32Array)) return v;
      // A subclass whose getters lie (length, buffer, byteOffset) and whose length getter calls in.
      return new (class Liar extends Float32Array {
        override get length(): number {
          callBack(k);
          return 3;
        }
        override get byteOffset(): number {
          return 4;
        }
      })(v);
    case 6: {
      if (!(v instanceof Float32Array)) return v;
      const d = v.slice();
      structuredClone(d.buffer, { transfer: [d.buffer] });
      return d; // detached: length 0
    }
    default:
      return Object.setPrototypeOf({ length: 4, 0: 1, 1: 2 }, Float32Array.prototype);
  }
}
/** A value to make hostile in the property's body (fast-check itself reads generated values,
 *  and a Proxy whose traps throw would stop it there). */
class Hostile {
  constructor(
    readonly value: unknown,
    readonly k: number,
  ) {}
}
const hostileOf = (valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.tuple(valid, fc.nat()).map(([v, k]) => new Hostile(v, k));

/** A generated case with its Hostile markers made into hostile values (objects and arrays copied). */
function materialize<T>(v: T): T {
  if (v instanceof Hostile) return hostile(materialize(v.value), v.k) as T;
  if (Array.isArray(v)) return v.map(materialize) as T;
  if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, materialize(x)])) as T;
  return v;
}

/** A valid value, or one of its neighbours (a wrong type, out of range, non-finite, anything). */
function near<T>(valid: fc.Arbitrary<T>, ...bad: unknown[]): fc.Arbitrary<unknown> {
  const parts: fc.WeightedArbitrary<unknown>[] = [
    { weight: 6, arbitrary: valid },
    { weight: 1, arbitrary: anything },
  ];
  if (bad.length > 0) parts.push({ weight: 2, arbitrary: fc.constantFrom(...bad) });
  return fc.oneof(...parts);
}

/** An options object: valid keys with values near valid ones, sometimes an unknown key, or anything. */
function options(spec: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const record = fc.record(spec, { requiredKeys: [] });
  return fc.oneof(
    { weight: 8, arbitrary: record },
    {
      weight: 1,
      arbitrary: fc
        .tuple(record, fc.string({ maxLength: 6 }), anything)
        .map(([r, k, v]) => ({ ...(r as object), [k]: v })),
    },
    { weight: 1, arbitrary: anything },
    { weight: 1, arbitrary: hostileOf(record) },
  );
}

const size = near(fc.integer({ min: 1, max: 6 }), 0, -1, 1.5, NaN, Infinity, "3", 3n, null);
const finite = (lo: number, hi: number) =>
  near(fc.double({ min: lo, max: hi, noNaN: true }), NaN, Infinity, -1, "0.1", 1e300, -0);
const floats = (n: number) => {
  const valid = fc.float32Array({ minLength: n, maxLength: n, noDefaultInfinity: true, noNaN: true, min: -4, max: 4 });
  return fc.oneof(
    {
      weight: 8,
      arbitrary: near(
        valid,
        new Float32Array(0),
        new Float32Array(n + 1),
        new Float64Array(n),
        Array(n).fill(0.5),
        Float32Array.of(NaN),
        "x",
      ),
    },
    { weight: 1, arbitrary: hostileOf(valid) },
  );
};

/** Runs fn: returns normally, or throws an EntrogradError with a documented code. */
function tolerated(fn: () => unknown, label: () => string): EntrogradError | null {
  try {
    fn();
    return null;
  } catch (e) {
    check(e instanceof EntrogradError && CODES.has(e.code), () => {
      let what: string;
      try {
        what = label(); // the case may hold revoked proxies, which fc.stringify cannot show
      } catch {
        what = "a case with hostile values";
      }
      return `${what}: threw ${String(e)} (${(e as Error)?.constructor?.name})`;
    });
    return e as EntrogradError;
  }
}

const pool: InstanceType<typeof Model>[] = [];
afterAll(() => {
  for (const m of pool) if (!m.disposed) m.dispose();
  scratch?.dispose();
});

describe("arbitrary arguments to the public API", () => {
  it(`new Model, Model.from, Model.load (${RUNS} cases)`, () => {
    const backend = near(fc.constantFrom<Backend | "auto">("auto", ...BACKENDS), "gpu", "", 1);
    const arb = fc.record({
      which: fc.integer({ min: 0, max: 2 }),
      model: options({
        inputs: size,
        outputs: size,
        init: near(fc.constantFrom("xavier", "uniform", "normal", "zeros"), "he", 0),
        seed: near(fc.integer(), 1.5, NaN, 2 ** 60),
        backend,
      }),
      from: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })).chain(([i, o]) =>
        options({
          inputs: near(fc.constant(i)),
          outputs: near(fc.constant(o)),
          w: floats(i * o),
          g: floats(i * o),
          b: floats(o),
          backend,
        }),
      ),
      load: fc.tuple(near(fc.uint8Array({ maxLength: 64 }), new Uint8Array(0), "bytes", null), options({ backend })),
    });
    fc.assert(
      fc.property(arb, (generated) => {
        const c = materialize(generated);
        let made: InstanceType<typeof Model> | undefined;
        tolerated(
          () => {
            made =
              c.which === 0
                ? new Model(c.model as never)
                : c.which === 1
                  ? Model.from(c.from as never)
                  : Model.load(c.load[0] as never, c.load[1] as never);
          },
          () => `case ${c.which}: ${fc.stringify(generated)}`,
        );
        if (made !== undefined) {
          // What was made is a working model.
          check(
            made.w.length === made.inputs * made.outputs &&
              [made.w, made.g, made.b].every((v) => v.every(Number.isFinite)),
            () => "a bad model was made",
          );
          made.dispose();
        }
      }),
      settings(20),
    );
  });

  it(`model calls: forward, entropy, gradients, input, with arbitrary x and options; state unchanged on a throw (${RUNS} cases)`, () => {
    for (const backend of BACKENDS) pool.push(new Model({ inputs: 3, outputs: 2, seed: 4, backend }));
    const objective = options({ entropy: finite(-2, 2), crossEntropy: finite(-2, 2) });
    const adapt = options({
      maxEntropy: finite(0, 4),
      weighting: near(fc.constantFrom("none", "eata"), "EATA", 1),
      diversity: finite(0, 1),
    });
    const loss = options({
      reduction: near(fc.constantFrom("mean", "sum", "none"), "avg", 0),
      objective,
      adapt,
      targets: near(
        fc.float32Array({ minLength: 4, maxLength: 4, min: 0, max: 1, noNaN: true }),
        new Float32Array(3),
        Float32Array.of(0, 1, 2, 0.5),
        [0, 0, 0, 0],
      ),
    });
    const arb = fc.record({
      m: fc.integer({ min: 0, max: BACKENDS.length - 1 }),
      call: fc.integer({ min: 0, max: 3 }),
      x: floats(6),
      opts: loss,
      batch: size,
    });
    fc.assert(
      fc.property(arb, (generated) => {
        const c = materialize(generated);
        const m = pool[c.m];
        const before = [m.w, m.g, m.b].map((v) => Array.from(bits(v)));
        const err = tolerated(
          () => {
            if (c.call === 0) m.forward(c.x as never);
            else if (c.call === 1) m.entropy(c.x as never, c.opts as never);
            else if (c.call === 2) m.gradients(c.x as never, c.opts as never);
            else m.input(c.batch as never);
          },
          () => `${m.backend} call ${c.call}: ${fc.stringify(generated)}`,
        );
        const after = [m.w, m.g, m.b].map((v) => Array.from(bits(v)));
        check(
          JSON.stringify(after) === JSON.stringify(before),
          () => `parameters changed by call ${c.call} (${err?.code ?? "ok"})`,
        );
        check(Number.isFinite(m.entropy(new Float32Array(6).fill(0.5))), () => "the model stopped working");
      }),
      settings(21),
    );
  });

  it(`optimizers and schedulers: constructors, step, lr, state dicts and files with arbitrary arguments (${RUNS} cases)`, () => {
    const group = options({
      lr: finite(0, 1),
      weightDecay: finite(0, 0.1),
      momentum: finite(0, 0.99),
      dampening: finite(0, 1),
      nesterov: near(fc.boolean(), 1, "true"),
      frozen: near(fc.boolean(), 0),
      betas: near(
        fc.tuple(fc.double({ min: 0, max: 0.999, noNaN: true }), fc.double({ min: 0, max: 0.999, noNaN: true })),
        [0.9],
        [1.5, 0.9],
        "0.9",
      ),
      eps: finite(1e-12, 1e-3),
      maxGradNorm: finite(0, 10),
    });
    const optOptions = options({
      lr: finite(0, 1),
      momentum: finite(0, 0.99),
      dampening: finite(0, 1),
      nesterov: near(fc.boolean(), 1),
      weightDecay: finite(0, 0.1),
      betas: near(fc.constant([0.9, 0.999]), [0.9], [2, 0.5]),
      eps: finite(1e-12, 1e-3),
      maxGradNorm: finite(0, 10),
      groups: near(fc.record({ w: group, g: group, b: group }, { requiredKeys: [] }), [], { x: {} }, null),
    });
    const arb = fc.record({
      backend: fc.constantFrom(...BACKENDS),
      adam: fc.boolean(),
      opts: optOptions,
      call: fc.integer({ min: 0, max: 6 }),
      x: floats(6),
      lr: finite(0, 1),
      state: anything,
      sched: fc.tuple(
        fc.integer({ min: 0, max: 3 }),
        options({
          stepSize: size,
          gamma: finite(0, 1),
          tMax: size,
          etaMin: finite(0, 0.1),
          startFactor: finite(0, 1),
          endFactor: finite(0, 1),
          totalIters: size,
        }),
      ),
    });
    fc.assert(
      fc.property(arb, (generated) => {
        const c = materialize(generated);
        const m = new Model({ inputs: 3, outputs: 2, seed: 7, backend: c.backend });
        try {
          const Opt = c.adam ? Adam : SGD;
          let opt: InstanceType<typeof SGD> | InstanceType<typeof Adam> | undefined;
          const made = tolerated(
            () => {
              opt = new Opt(m, c.opts as never);
            },
            () => `new ${Opt.name}(${fc.stringify(generated.opts)})`,
          );
          if (made !== null || opt === undefined) return;
          const o = opt;
          tolerated(
            () => o.step(new Float32Array(6).fill(0.25)),
            () => "a first step",
          ); // may overflow with wild options
          const before = {
            p: [m.w, m.g, m.b].map((v) => Array.from(bits(v))),
            s: JSON.stringify(o.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v)),
            lr: o.lr,
          };
          const err = tolerated(
            () => {
              switch (c.call) {
                case 0:
                  o.step(c.x as never);
                  break;
                case 1:
                  o.lr = c.lr as never;
                  break;
                case 2:
                  o.loadStateDict(c.state as never);
                  break;
                case 3:
                  o.load(c.state as never);
                  break;
                case 4:
                  o.step(new Float32Array(6).fill(0.1), c.opts as never);
                  break;
                case 5: {
                  const [k, so] = c.sched;
                  const S = [StepLR, ExponentialLR, CosineAnnealingLR, LinearLR][k];
                  const s = new S(o, so as never);
                  s.step();
                  break;
                }
                default:
                  o.reset();
              }
            },
            () => `call ${c.call}: ${fc.stringify(generated)}`,
          );
          if (err !== null) {
            const now = {
              p: [m.w, m.g, m.b].map((v) => Array.from(bits(v))),
              s: JSON.stringify(o.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v)),
              lr: o.lr,
            };
            check(
              JSON.stringify(now) === JSON.stringify(before),
              () => `call ${c.call} threw ${err.code} but changed the state`,
            );
          }
        } finally {
          m.dispose();
        }
      }),
      settings(22),
    );
  });

  it(`fit() with arbitrary options (${Math.ceil(RUNS / 10)} cases)`, async () => {
    const fitOptions = options({
      epochs: near(fc.integer({ min: 1, max: 2 }), 0, 1.5, 1e9),
      batchSize: size,
      dropLast: near(fc.boolean()),
      shuffle: near(fc.boolean()),
      seed: near(fc.integer()),
      reduction: near(fc.constantFrom("mean", "sum"), "none"),
      yieldEvery: finite(0, 5),
      objective: options({ entropy: finite(0, 1), crossEntropy: finite(0, 1) }),
      targets: near(fc.float32Array({ minLength: 8, maxLength: 8, min: 0, max: 1, noNaN: true }), new Float32Array(7)),
      onBatch: near(
        fc.constant(() => undefined),
        "f",
        1,
      ),
      onEpoch: near(fc.constant(() => true)),
    });
    await fc.assert(
      fc.asyncProperty(fitOptions, fc.constantFrom(...BACKENDS), async (o, backend) => {
        const m = new Model({ inputs: 3, outputs: 2, seed: 1, backend });
        try {
          const opt = new SGD(m, { lr: 0.01 });
          // Epochs beyond 2 are not run: an abort after the first batch.
          const ac = new AbortController();
          let batches = 0;
          const withAbort = (v: unknown) =>
            typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Hostile)
              ? {
                  ...(v as object),
                  signal: ac.signal,
                  onBatch: () => {
                    if (++batches > 8) ac.abort();
                  },
                }
              : v;
          // The abort goes into the options before they are made hostile (a Proxy of them, a
          // getter on one key, ...), so hostile options stop too.
          const wrapped = materialize(o instanceof Hostile ? new Hostile(withAbort(o.value), o.k) : withAbort(o));
          try {
            await fit(m, opt, new Float32Array(12).fill(0.2), wrapped as never);
          } catch (e) {
            const abort = e instanceof Error && e.name === "AbortError";
            check(
              abort || (e instanceof EntrogradError && CODES.has(e.code)),
              () => `fit threw ${String(e)} for ${fc.stringify(o)}`,
            );
          }
          check(
            [m.w, m.g, m.b].every((v) => v.every(Number.isFinite)),
            () => "fit left a non-finite parameter",
          );
        } finally {
          m.dispose();
        }
      }),
      { ...settings(23, Math.ceil(RUNS / 10)) },
    );
  });
});
