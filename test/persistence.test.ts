// clone(), optimizer state (stateDict / loadStateDict / reset), and save() / Model.load() in the
// safetensors format, read and written here by an independent parser and writer.
import { beforeAll, describe, expect, it } from "vitest";
import { init, Model, SGD } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, batchX, bits, expectCode, snapshot } from "./helpers";

beforeAll(async () => {
  await init();
});

type AnyModel = InstanceType<typeof Model>;
// save() and Model.load() are in docs/api.md; typed here so this file compiles before they exist.
const save = (m: AnyModel): Uint8Array => (m as unknown as { save(): Uint8Array }).save();
const ModelIO = Model as unknown as { load(bytes: Uint8Array, options?: { backend?: Backend }): AnyModel };
const same = (a: AnyModel, b: AnyModel) => {
  for (const k of ["w", "g", "b"] as const) expect(Array.from(bits(a[k])), k).toEqual(Array.from(bits(b[k])));
};

function trained(backend: Backend, seed = 6) {
  const rng = new ref.Rng(seed);
  const m = new Model({ inputs: 5, outputs: 3, seed, backend });
  const opt = new SGD(m, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
  const xs = [batchX(rng, 6, 5), batchX(rng, 6, 5), batchX(rng, 6, 5)];
  for (const x of xs) opt.step(x);
  return { m, opt, xs };
}

describe.each(BACKENDS)("clone and optimizer state on %s", (backend) => {
  it("clone() is an independent copy", () => {
    const { m, xs } = trained(backend);
    const c = m.clone();
    expect(c.backend).toBe(backend);
    expect([c.inputs, c.outputs]).toEqual([5, 3]);
    same(c, m);
    expect(Array.from(bits(c.forward(xs[0]).z))).toEqual(Array.from(bits(m.forward(xs[0]).z)));
    const before = snapshot(m);
    c.w[0] += 1;
    c.b[1] -= 1;
    new SGD(c, { lr: 0.5 }).step(xs[1]);
    expect(Array.from(bits(m.w))).toEqual(Array.from(before.w));
    expect(Array.from(bits(m.b))).toEqual(Array.from(before.b));
    c.dispose();
    // The original outlives its disposed clone.
    expect(Number.isFinite(m.entropy(xs[0]))).toBe(true);
    m.dispose();
  });

  it("stateDict() is plain data; loadStateDict() into a twin continues the same trajectory", () => {
    const { m, opt, xs } = trained(backend);
    const state = opt.stateDict();
    const copy = structuredClone(state);
    expect(copy).toStrictEqual(state);
    const twin = m.clone();
    const opt2 = new SGD(twin, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    opt2.loadStateDict(copy);
    for (let s = 0; s < 5; s++) {
      expect(opt2.step(xs[s % 3]).loss).toBe(opt.step(xs[s % 3]).loss);
      same(twin, m);
    }
    expect(opt2.stateDict()).toStrictEqual(opt.stateDict());
    m.dispose();
    twin.dispose();
  });

  it("without the state a twin diverges (the momentum buffers matter), and reset() forgets them", () => {
    const { m, opt, xs } = trained(backend);
    const twin = m.clone();
    const fresh = new SGD(twin, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    opt.step(xs[0]);
    fresh.step(xs[0]);
    expect(Array.from(m.w)).not.toEqual(Array.from(twin.w));
    // reset(): the next step is a first step, like a fresh optimizer's.
    const a = m.clone();
    const b = m.clone();
    const oa = new SGD(a, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    oa.step(xs[1]);
    oa.step(xs[2]);
    oa.reset();
    const ob = new SGD(b, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    // a has moved; bring b to the same parameters, then both take a "first" step.
    b.w.set(a.w);
    b.g.set(a.g);
    b.b.set(a.b);
    oa.step(xs[0]);
    ob.step(xs[0]);
    same(a, b);
    for (const o of [m, twin, a, b]) o.dispose();
  });
});

// ---- safetensors, written and read here ---------------------------------------------------------
// Layout: u64 little-endian header length N, N bytes of JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {...} }, then the data;
// offsets are relative to the start of the data.

interface Tensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

function parseSafetensors(bytes: Uint8Array): { header: Record<string, unknown>; tensors: Record<string, Tensor> } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const data = bytes.subarray(8 + n);
  const tensors: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets } = t as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors[name] = { dtype, shape, data: data.subarray(data_offsets[0], data_offsets[1]) };
  }
  return { header, tensors };
}

function writeSafetensors(
  entries: Record<string, { dtype?: string; shape: number[]; data: Uint8Array; offsets?: [number, number] }>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, e] of Object.entries(entries)) {
    header[name] = { dtype: e.dtype ?? "F32", shape: e.shape, data_offsets: e.offsets ?? [at, at + e.data.length] };
    at += e.data.length;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += " ";
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + json.length;
  for (const e of Object.values(entries)) {
    out.set(e.data, p);
    p += e.data.length;
  }
  return out;
}

/** Little-endian float32 bytes (the format's byte order, whatever the host's). */
function le(a: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(a.length * 4);
  const v = new DataView(out.buffer);
  for (let i = 0; i < a.length; i++) v.setFloat32(i * 4, a[i], true);
  return out;
}

const hasSave =
  typeof (Model.prototype as { save?: unknown }).save === "function" &&
  typeof (Model as { load?: unknown }).load === "function";

describe.runIf(hasSave).each(BACKENDS)("save() and Model.load() on %s", (backend) => {
  it("save() writes the tensors w, g, b as F32 with their shapes and exact bytes", () => {
    const { m } = trained(backend);
    const { tensors } = parseSafetensors(save(m));
    expect(Object.keys(tensors).sort()).toEqual(["b", "g", "w"]);
    expect(tensors.w).toMatchObject({ dtype: "F32", shape: [3, 5] });
    expect(tensors.g).toMatchObject({ dtype: "F32", shape: [3, 5] });
    expect(tensors.b).toMatchObject({ dtype: "F32", shape: [3] });
    for (const k of ["w", "g", "b"] as const)
      expect(Array.from(tensors[k].data), `${k} bytes`).toEqual(Array.from(le(m[k])));
    m.dispose();
  });

  it("Model.load(save()) restores the model bitwise, on every backend", () => {
    const { m, xs } = trained(backend);
    const bytes = save(m);
    for (const to of BACKENDS) {
      const l = ModelIO.load(bytes, { backend: to });
      expect(l.backend).toBe(to);
      expect([l.inputs, l.outputs]).toEqual([5, 3]);
      same(l, m);
      l.dispose();
    }
    const l = ModelIO.load(bytes, { backend });
    expect(Array.from(bits(l.forward(xs[0]).z))).toEqual(Array.from(bits(m.forward(xs[0]).z)));
    l.dispose();
    m.dispose();
  });

  it("Model.load reads a file written by another safetensors writer", () => {
    const rng = new ref.Rng(12);
    const w = rng.floats(8, -1, 1);
    const g = rng.floats(8, -0.1, 0.1);
    const b = rng.floats(2, -1, 1);
    const bytes = writeSafetensors({
      b: { shape: [2], data: le(b) },
      w: { shape: [2, 4], data: le(w) },
      g: { shape: [2, 4], data: le(g) },
    });
    const m = ModelIO.load(bytes, { backend });
    expect([m.inputs, m.outputs]).toEqual([4, 2]);
    expect(Array.from(m.w)).toEqual(Array.from(w));
    expect(Array.from(m.g)).toEqual(Array.from(g));
    expect(Array.from(m.b)).toEqual(Array.from(b));
    m.dispose();
  });

  it("files that are not valid entrograd safetensors are FORMAT", () => {
    const w = le(new Float32Array(6));
    const g = le(new Float32Array(6));
    const b = le(new Float32Array(2));
    const good = { w: { shape: [2, 3], data: w }, g: { shape: [2, 3], data: g }, b: { shape: [2], data: b } };
    const bad: [string, Uint8Array][] = [
      ["empty", new Uint8Array(0)],
      ["random bytes", Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 255)],
      [
        "header longer than the file",
        (() => {
          const f = writeSafetensors(good);
          new DataView(f.buffer).setBigUint64(0, BigInt(f.length), true);
          return f;
        })(),
      ],
      [
        "header not JSON",
        (() => {
          const f = writeSafetensors(good);
          f[8] = 0x7b + 1;
          return f;
        })(),
      ],
      ["truncated data", writeSafetensors(good).subarray(0, writeSafetensors(good).length - 4)],
      ["F64 tensor", writeSafetensors({ ...good, w: { dtype: "F64", shape: [2, 3], data: w } })],
      ["missing b", writeSafetensors({ w: good.w, g: good.g })],
      ["g shape differs from w", writeSafetensors({ ...good, g: { shape: [3, 2], data: g } })],
      [
        "b length differs from outputs",
        writeSafetensors({ ...good, b: { shape: [3], data: le(new Float32Array(3)) } }),
      ],
      [
        "offsets disagree with the shape",
        writeSafetensors({ ...good, w: { shape: [2, 3], data: w, offsets: [0, 20] } }),
      ],
    ];
    for (const [label, bytes] of bad) expectCode(() => ModelIO.load(bytes, { backend }), "FORMAT", label);
    // The good one loads.
    ModelIO.load(writeSafetensors(good), { backend }).dispose();
  });

  it("save() after dispose() throws DISPOSED", () => {
    const m = new Model({ inputs: 2, outputs: 2, backend });
    m.dispose();
    expectCode(() => save(m), "DISPOSED", "save");
  });
});
