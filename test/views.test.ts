// Views kept past dispose() (issue 12, causes 1 and 2). Every Float32Array the package hands
// out over a core's memory (m.w, m.g, m.b, m.input(), forward()'s z and d, gradients()'s dw, dg
// and db, an adaptation step's positive and meanPrediction) may be kept by the user after the
// model is disposed, collected, or has moved the memory under it (a larger batch). Written with
// garbage then, such a view must never reach memory another model, optimizer or the allocator
// uses: the other models' parameters, optimizer state, rule records and results stay bitwise
// as they were, their steps give exactly what they gave before the attack, and new models can
// still be made (no corrupted free list). And a view must not keep its model alive: models whose
// views were read are collected, and memory stays flat over 10⁴ of them.
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { Adam, init, Model, SGD } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, bits, lastLine } from "./helpers";

beforeAll(async () => {
  // Threads for the threaded backend's cases (its arenas: shared memories, which nothing can
  // detach); the other cases run on one thread (threads: 1), as ever.
  await init({ threads: 2 });
});

/** The one-thread backends, and wasm-simd with threads (ts/threads/arena.ts). */
const THREADED = "wasm-simd, 2 threads";
const SETUPS = [...BACKENDS, THREADED] as const;
type Setup = (typeof SETUPS)[number];
const on = (s: Setup): { backend: Backend; threads: number } =>
  s === THREADED ? { backend: "wasm-simd", threads: 2 } : { backend: s, threads: 1 };

type AnyModel = InstanceType<typeof Model>;
type AnyOpt = InstanceType<typeof SGD> | InstanceType<typeof Adam>;

const data = (seed: number, n: number, lo = -1, hi = 1) => new ref.Rng(seed).floats(n, lo, hi);

/** Every kind of view a model hands out, read from `m` (which is left with all of them live). */
function everyView(m: AnyModel, seed: number): Record<string, Float32Array> {
  const x = data(seed, 3 * m.inputs);
  const f = m.forward(x);
  const z = f.z,
    d = f.d;
  const g = m.gradients(x);
  const opt = new SGD(m, { lr: 0.1 });
  const a = opt.step(x, { adapt: { diversity: 0.5, prior: 0.5 } });
  const staged = m.input(4);
  return {
    w: m.w,
    g: m.g,
    b: m.b,
    input: staged,
    z,
    d,
    dw: g.dw,
    dg: g.dg,
    db: g.db,
    positive: a.positive,
    meanPrediction: a.meanPrediction,
    marginal: a.marginal as Float32Array,
  };
}

interface Victim {
  m: AnyModel;
  /** makeOpt's kind. */
  kind: number;
  opt: AnyOpt;
  x: Float32Array;
  /** Parameters and optimizer state when the attack began. */
  params: Uint32Array[];
  state: string;
  /** Losses and parameters after two more steps, computed before the attack on a twin. */
  expected: { losses: number[]; params: Uint32Array[] };
}

const stateOf = (opt: AnyOpt) =>
  JSON.stringify(opt.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v));
const paramBits = (m: AnyModel) => [bits(m.w), bits(m.g), bits(m.b)];
const makeOpt = (m: AnyModel, k: number): AnyOpt =>
  k % 2 ? new Adam(m, { lr: 0.01 }) : new SGD(m, { lr: 0.1, momentum: 0.9 });

/** Two steps on `m`'s twin (a fresh model with its parameters and optimizer state). */
function twoSteps(m: AnyModel, opt: AnyOpt, k: number, x: Float32Array) {
  const twin = Model.from({
    inputs: m.inputs,
    outputs: m.outputs,
    w: m.w,
    g: m.g,
    b: m.b,
    backend: m.backend,
    threads: m.threads,
  });
  const o = makeOpt(twin, k);
  o.loadStateDict(structuredClone(opt.stateDict()) as never);
  const losses = [o.step(x).loss, o.step(x).loss];
  const params = paramBits(twin);
  twin.dispose();
  return { losses, params };
}

/** Models of several shapes (some the shape of the disposed ones, so they take their memory
 *  back under a first-fit allocator), each with an optimizer that has stepped once. */
function victims(backend: Setup, shapes: [number, number][]): Victim[] {
  return shapes.map(([inputs, outputs], k) => {
    const m = new Model({ inputs, outputs, seed: 11 + k, ...on(backend) });
    const opt = makeOpt(m, k);
    const x = data(100 + k, 3 * inputs);
    opt.step(x);
    return { m, kind: k, opt, x, params: [], state: "", expected: { losses: [], params: [] } };
  });
}

/** Notes every victim's state and what two more steps give, before the attack. */
function expect2(vs: Victim[]): void {
  for (const v of vs) {
    v.params = paramBits(v.m);
    v.state = stateOf(v.opt);
    v.expected = twoSteps(v.m, v.opt, v.kind, v.x);
  }
}

/** Writes garbage through a view: words that point at `target` (a live model's w), small whole
 *  numbers (rule kinds, flags), NaN bits and random words. A detached view takes nothing. */
function garble(v: Float32Array, target: Float32Array, seed: number): void {
  if (v.length === 0) return;
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const rng = new ref.Rng(seed);
  for (let k = 0; k < u.length; k++) {
    const r = k % 4;
    u[k] = r === 0 ? target.byteOffset : r === 1 ? k % 3 : r === 2 ? 0x7fc00000 : Math.floor(rng.next() * 2 ** 32);
  }
}

/** Every victim as it was, and its next two steps exactly the ones computed before the attack;
 *  then new models of other shapes still allocate, step and compute right. */
function expectUnharmed(vs: Victim[], backend: Setup, label: string): void {
  const params = ["w", "g", "b"];
  vs.forEach((v, k) => {
    const now = paramBits(v.m);
    for (let i = 0; i < 3; i++)
      expect(Array.from(now[i]), `${label}: victim ${k}'s ${params[i]} changed`).toEqual(Array.from(v.params[i]));
    expect(stateOf(v.opt), `${label}: victim ${k}'s optimizer state changed`).toBe(v.state);
  });
  vs.forEach((v, k) => {
    const losses = [v.opt.step(v.x).loss, v.opt.step(v.x).loss];
    expect(losses, `${label}: victim ${k}'s losses`).toEqual(v.expected.losses);
    const now = paramBits(v.m);
    for (let i = 0; i < 3; i++)
      expect(Array.from(now[i]), `${label}: victim ${k}'s ${params[i]} after its steps`).toEqual(
        Array.from(v.expected.params[i]),
      );
  });
  // The allocator: models of every size come and go, and compute what the js backend computes.
  for (let k = 0; k < 24; k++) {
    const inputs = 1 + ((k * 7) % 40),
      outputs = 1 + ((k * 5) % 12);
    const m = new Model({ inputs, outputs, seed: k, ...on(backend) });
    const x = data(500 + k, (1 + (k % 9)) * inputs);
    new SGD(m, { lr: 0.1, momentum: 0.5 }).step(x);
    const js = new Model({ inputs, outputs, seed: k, backend: "js" });
    new SGD(js, { lr: 0.1, momentum: 0.5 }).step(x);
    const z = Array.from(m.forward(x).z),
      zj = Array.from(js.forward(x).z);
    for (let i = 0; i < zj.length; i++)
      expect(Math.abs(z[i] - zj[i]), `${label}: new model ${k}'s z[${i}]`).toBeLessThan(1e-4);
    if (k % 3 !== 0) m.dispose();
  }
}

describe.each(SETUPS)("views kept past dispose() on %s", (backend) => {
  it("the issue's snippet: a.w kept past a.dispose(), w.fill(123), and the next model is untouched", () => {
    const a = new Model({ inputs: 4, outputs: 3, ...on(backend) });
    const w = a.w;
    const before = Array.from(bits(w));
    a.dispose();
    const b = new Model({ inputs: 4, outputs: 3, seed: 7, ...on(backend) });
    const bw = Array.from(bits(b.w));
    // Never a view of b: it holds a's values (quarantined memory) or nothing (detached).
    if (w.length > 0) {
      expect(Array.from(bits(w)), "the kept view reads a's memory, not b's").toEqual(before);
      w.fill(123); // (a detached view's fill() throws a TypeError)
    }
    expect(Array.from(bits(b.w))).toEqual(bw);
    expect(Array.from(b.forward(new Float32Array(4).fill(1)).z).every(Number.isFinite)).toBe(true);
    b.dispose();
  });

  it("every view kept past dispose() and written with garbage: other models, their optimizers and the allocator unharmed", () => {
    // Two disposed models' views: one disposed before the victims existed (its memory is what
    // a first-fit allocator hands them), one disposed among them.
    const first = new Model({ inputs: 4, outputs: 3, seed: 1, ...on(backend) });
    const kept = Object.entries(everyView(first, 1));
    first.dispose();
    const vs = victims(backend, [
      [4, 3],
      [4, 3],
      [8, 2],
      [2, 5],
      [4, 3],
      [16, 4],
    ]);
    const second = new Model({ inputs: 8, outputs: 2, seed: 2, ...on(backend) });
    kept.push(...Object.entries(everyView(second, 2)).map(([k, v]): [string, Float32Array] => [`second ${k}`, v]));
    second.dispose();
    vs.push(...victims(backend, [[8, 2]]));
    expect2(vs);
    kept.forEach(([, v], k) => {
      garble(v, vs[k % vs.length].m.w, k);
    });
    expectUnharmed(vs, backend, "after garbage through kept views");
    for (const v of vs) v.m.dispose();
  });

  it("a kept m.input() view written after dispose never breaks another model's step or its rules", () => {
    const a = new Model({ inputs: 4, outputs: 3, ...on(backend) });
    const staged = a.input(8);
    a.dispose();
    // The next models (and their rule records and momentum buffers) take the freed memory back.
    const vs = victims(backend, [
      [4, 3],
      [4, 3],
      [4, 3],
    ]);
    expect2(vs);
    garble(staged, vs[2].m.w, 5);
    expectUnharmed(vs, backend, "after writing the kept staging view");
    for (const v of vs) v.m.dispose();
  });

  it("forward()'s z and d and gradients()'s dw kept past dispose, or past a call that moved the work area", () => {
    const m = new Model({ inputs: 4, outputs: 3, seed: 3, ...on(backend) });
    const small = data(7, 2 * 4);
    const { z, d } = m.forward(small);
    const { dw, db } = m.gradients(small);
    // A larger batch moves the results to a new work area; the old one is released.
    m.forward(data(8, 200 * 4));
    const vs = victims(backend, [
      [4, 3],
      [2, 2],
      [1, 1],
    ]);
    const z2 = m.forward(small).z;
    const dw2 = m.gradients(small).dw;
    m.dispose();
    vs.push(...victims(backend, [[4, 3]]));
    expect2(vs);
    [z, d, dw, db, z2, dw2].forEach((v, k) => {
      garble(v, vs[k % vs.length].m.w, 40 + k);
    });
    expectUnharmed(vs, backend, "after writing kept results");
    for (const v of vs) v.m.dispose();
  });

  it("stateDict() gives copies: kept and written after its optimizer and model are gone, they change nothing", () => {
    const m = new Model({ inputs: 4, outputs: 3, seed: 5, ...on(backend) });
    const opt = new Adam(m, { lr: 0.01 });
    opt.step(data(9, 8));
    const sd = opt.stateDict();
    const tensors = Object.values(sd.state).flatMap((e) => [e.expAvg, e.expAvgSq]) as Float32Array[];
    expect(tensors.length).toBe(6);
    for (const t of tensors) expect(t.buffer, "a state tensor is not a view of the core's memory").not.toBe(m.w.buffer);
    m.dispose();
    const vs = victims(backend, [
      [4, 3],
      [4, 3],
    ]);
    expect2(vs);
    tensors.forEach((t, k) => {
      garble(t, vs[0].m.w, 60 + k);
    });
    expectUnharmed(vs, backend, "after writing kept state tensors");
    for (const v of vs) v.m.dispose();
  });

  it("a view of a live model kept while other models come and go is right or detached, never another's memory", () => {
    const m = new Model({ inputs: 64, outputs: 16, seed: 9, ...on(backend) });
    const w = m.w;
    const want = Array.from(bits(w));
    // 200 models whose views were read, disposed: 8 MB waits in quarantine, more than the flush
    // threshold (1 MiB, or 1/8 of the memory), so views of the memory were detached.
    for (let k = 0; k < 200; k++) {
      const o = new Model({ inputs: 128, outputs: 32, seed: k, ...on(backend) });
      o.w[0] = 1;
      o.dispose();
    }
    const others = [0, 1, 2].map((k) => new Model({ inputs: 64, outputs: 16, seed: 20 + k, ...on(backend) }));
    const theirs = others.map((o) => Array.from(bits(o.w)));
    // The js backend's view is the model's own array; a shared memory's is never detached (and
    // nothing else was put there: ts/threads/arena.ts).
    const own = backend === "js" || backend === THREADED;
    if (own) expect(Array.from(bits(w)), `${backend}: the view is the model's own memory`).toEqual(want);
    else expect(w.length, "wasm: the flush detached the view").toBe(0);
    for (let i = 0; i < want.length; i++) w[i] = -7;
    others.forEach((o, k) => {
      expect(Array.from(bits(o.w)), `model ${k}`).toEqual(theirs[k]);
    });
    if (own) expect(Array.from(m.w)).toEqual(new Array(want.length).fill(-7));
    else expect(Array.from(bits(m.w)), "a fresh view: m's parameters, untouched").toEqual(want);
    m.w[3] = 0.5;
    expect(m.w[3]).toBe(0.5);
    for (const o of others) o.dispose();
    m.dispose();
  });
});

/** Runs a script in a child `node --expose-gc` against the built package; returns its last JSON line. */
function child(body: string): Record<string, unknown> {
  const dist = new URL("../dist/index.js", import.meta.url).href;
  const script = `
    import { init, Model, SGD, Adam, memoryBytes } from ${JSON.stringify(dist)};
    await init();
    const settle = async () => { for (let k = 0; k < 4; k++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 2)); } };
    ${body}`;
  const r = spawnSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(lastLine(r.stdout));
}

describe("views do not keep their model alive (child node --expose-gc)", () => {
  it("a model whose w was read, or that ran gradients(), forward() or input(), is collected", () => {
    const o = child(`
      const x = new Float32Array(16 * 4).fill(0.25);
      const uses = {
        w: (m) => m.w[0],
        g: (m) => m.g[0],
        gradients: (m) => m.gradients(x),
        forward: (m) => m.forward(x),
        input: (m) => m.input(3),
        step: (m) => new SGD(m, { lr: 0.1, momentum: 0.9 }).step(x),
      };
      const refs = [];
      const make = (use, backend) => {
        const m = new Model({ inputs: 16, outputs: 4, backend });
        uses[use](m);
        return new WeakRef(m);
      };
      for (const backend of ["wasm-simd", "wasm", "js"])
        for (const use of Object.keys(uses)) refs.push([use + " on " + backend, make(use, backend)]);
      await settle();
      console.log(JSON.stringify({ alive: refs.filter(([, r]) => r.deref() !== undefined).map(([k]) => k) }));`);
    expect(o.alive).toEqual([]);
  });

  it("10⁴ models with view reads and gradients(): wasm memory and heap flat, disposed or left to the GC", () => {
    const o = child(`
      const x = new Float32Array(16 * 8).fill(0.25);
      const churn = async (n, dispose) => {
        for (let k = 0; k < n; k++) {
          const m = new Model({ inputs: 16, outputs: 4, backend: k % 2 ? "wasm" : "wasm-simd" });
          m.w[0];
          m.gradients(x);
          m.forward(x).z[0];
          if (dispose) m.dispose();
          else if (k % 500 === 499) await settle();
        }
        await settle();
      };
      const measure = () => ({ simd: memoryBytes("wasm-simd"), wasm: memoryBytes("wasm"), heap: process.memoryUsage().heapUsed });
      const out = {};
      for (const [name, dispose] of [["disposed", true], ["dropped", false]]) {
        await churn(2000, dispose); // warm-up: memory reaches its working size
        const before = measure();
        await churn(10000, dispose);
        const after = measure();
        out[name] = { before, after };
      }
      console.log(JSON.stringify(out));`) as Record<
      string,
      Record<"before" | "after", { simd: number; wasm: number; heap: number }>
    >;
    for (const [name, { before, after }] of Object.entries(o)) {
      const MB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MB`;
      const what = `${name}: ${JSON.stringify({ before, after })}`;
      expect(after.simd, `${what}: wasm-simd memory ${MB(before.simd)} → ${MB(after.simd)}`).toBe(before.simd);
      expect(after.wasm, `${what}: wasm memory ${MB(before.wasm)} → ${MB(after.wasm)}`).toBe(before.wasm);
      expect(after.heap - before.heap, `${what}: heap ${MB(before.heap)} → ${MB(after.heap)}`).toBeLessThan(
        4 * 2 ** 20,
      );
    }
  });

  it("a view kept past its model's collection is quarantined with it: written later, it changes no other model", () => {
    const o = child(`
      const kept = [];
      const make = (backend) => {
        const m = new Model({ inputs: 4, outputs: 3, seed: 1, backend });
        kept.push(m.w, m.input(4), m.gradients(new Float32Array(8).fill(0.5)).dw);
        return new WeakRef(m);
      };
      const refs = ["wasm-simd", "wasm"].map(make);
      await settle();
      const collected = refs.every((r) => r.deref() === undefined);
      const others = [];
      for (let k = 0; k < 6; k++) others.push(new Model({ inputs: 4, outputs: 3, seed: 7 + k, backend: k % 2 ? "wasm" : "wasm-simd" }));
      const before = others.map((m) => Array.from(m.w).join());
      for (const v of kept) for (let i = 0; i < v.length; i++) v[i] = 123; // (fill() throws once detached)
      const same = others.every((m, k) => Array.from(m.w).join() === before[k]);
      console.log(JSON.stringify({ collected, same }));`);
    expect(o).toEqual({ collected: true, same: true });
  });
});
