// Property tests of the safetensors parser (fast-check): valid files truncated, bit-flipped and
// with their headers edited must either load (into a consistent, finite model) or throw
// EntrogradError FORMAT: never another exception, a crash, a hang or a huge allocation.
// Over 10^4 cases per run, on the JS backend (the parser is the same TypeScript for every
// backend) plus a smaller share on wasm-simd. The seed is fixed (override: FC_SEED=n).
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Adam, EntrogradError, init, Model } from "entrograd";
import * as ref from "./reference";
import { batchX, targetsFor, type Backend } from "./helpers";

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 20240605;
let total = 0;

type AnyModel = InstanceType<typeof Model>;

/** Loads bytes; returns "ok" (after checking the model), or "FORMAT"; anything else fails. */
function outcome(bytes: Uint8Array, backend: Backend = "js"): "ok" | "FORMAT" {
  total++;
  let m: AnyModel;
  try {
    m = Model.load(bytes, { backend });
  } catch (e) {
    if (e instanceof EntrogradError && e.code === "FORMAT") return "FORMAT";
    throw e;
  }
  try {
    expect(m.w.length).toBe(m.inputs * m.outputs);
    expect(m.g.length).toBe(m.inputs * m.outputs);
    expect(m.b.length).toBe(m.outputs);
    for (const k of ["w", "g", "b"] as const) for (const v of m[k]) expect(Number.isFinite(v)).toBe(true);
    // A loaded model works.
    expect(Number.isFinite(m.entropy(new Float32Array(m.inputs)))).toBe(true);
  } finally {
    m.dispose();
  }
  return "ok";
}

function u64(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

/** Splits a file into its header object and data. */
function split(bytes: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(u64(bytes));
  return {
    header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>,
    data: bytes.subarray(8 + n),
  };
}

function join(headerText: string, data: Uint8Array, length?: bigint): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

let files: Uint8Array[] = [];
let optimizerFile: Uint8Array;
let optimizerModel: AnyModel;

beforeAll(async () => {
  await init();
  const rng = new ref.Rng(5);
  files = [
    [1, 1],
    [5, 3],
    [7, 2],
    [16, 4],
  ].map(([inputs, outputs], i) => {
    const m = new Model({ inputs, outputs, seed: i + 1, backend: "js" });
    m.g.set(rng.floats(inputs * outputs, -0.1, 0.1));
    m.b.set(rng.floats(outputs, -1, 1));
    const bytes = m.save();
    m.dispose();
    return bytes;
  });
  // A file without metadata and with g absent, as another writer might produce.
  const { header, data } = split(files[1]);
  const [gb, ge] = (header.g as { data_offsets: [number, number] }).data_offsets;
  const rest: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const k of ["w", "b"]) {
    const t = header[k] as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [b, e] = t.data_offsets;
    rest[k] = { ...t, data_offsets: [at, at + e - b] };
    parts.push(data.subarray(b, e));
    at += e - b;
  }
  void gb;
  void ge;
  const d = new Uint8Array(at);
  let p = 0;
  for (const part of parts) {
    d.set(part, p);
    p += part.length;
  }
  files.push(join(JSON.stringify(rest), d));
  for (const f of files) expect(outcome(f)).toBe("ok");

  optimizerModel = new Model({ inputs: 4, outputs: 2, seed: 3, backend: "js" });
  const opt = new Adam(optimizerModel, { lr: 0.01 });
  for (let s = 0; s < 2; s++)
    opt.step(batchX(rng, 4, 4), { objective: { crossEntropy: 1 }, targets: targetsFor(rng, 8) });
  optimizerFile = opt.save();
});

const fileIndex = () => fc.integer({ min: 0, max: 4 });

describe("the safetensors parser under fast-check", () => {
  it("every truncation of a valid file is FORMAT", () => {
    fc.assert(
      fc.property(fileIndex(), fc.double({ min: 0, max: 1, noNaN: true }), (i, frac) => {
        const f = files[i];
        const n = Math.min(f.length - 1, Math.floor(frac * f.length));
        expect(outcome(f.subarray(0, n))).toBe("FORMAT");
      }),
      { numRuns: 2000, seed: SEED },
    );
  });

  it("bit flips load consistently or are FORMAT", () => {
    const flip = fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      bit: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(fileIndex(), fc.array(flip, { minLength: 1, maxLength: 4 }), fc.boolean(), (i, flips, headerOnly) => {
        const f = files[i].slice();
        const span = headerOnly ? Math.min(f.length, 8 + Number(u64(files[i]))) : f.length;
        for (const { at, bit } of flips) f[Math.floor(at * span)] ^= 1 << bit;
        outcome(f);
      }),
      { numRuns: 4000, seed: SEED + 1 },
    );
  });

  const value = fc.oneof(
    fc.integer({ min: -5, max: 100 }),
    fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e300, -0, 0.5, Infinity),
    fc.double(),
    fc.string({ maxLength: 8 }),
    fc.constant(null),
    fc.boolean(),
    fc.array(fc.integer({ min: -2, max: 64 }), { maxLength: 4 }),
    fc.array(fc.constantFrom(0, 1, 2, 3, 4, 5, 8, 12, 15, 20, 60, 64, 2 ** 40), { maxLength: 3 }),
    fc.constantFrom("F32", "F64", "F16", "BF16", "I32", "U8", "BOOL", "f32", ""),
    fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 3 }),
  );
  const edit = fc.oneof(
    // Set a field of a tensor (or of the metadata, or of a new entry) to some value.
    fc.record({
      kind: fc.constant("set" as const),
      entry: fc.constantFrom("w", "g", "b", "__metadata__", "x", "__proto__", "constructor"),
      field: fc.constantFrom("dtype", "shape", "data_offsets", "extra", "format", "version", "units"),
      value,
    }),
    // Replace a whole entry.
    fc.record({
      kind: fc.constant("entry" as const),
      entry: fc.constantFrom("w", "g", "b", "__metadata__", "z"),
      value,
    }),
    // Delete an entry.
    fc.record({ kind: fc.constant("delete" as const), entry: fc.constantFrom("w", "g", "b", "__metadata__") }),
    // Swap the offsets of two tensors.
    fc.record({
      kind: fc.constant("swap" as const),
      a: fc.constantFrom("w", "g", "b"),
      c: fc.constantFrom("w", "g", "b"),
    }),
    // Overwrite part of the header text with arbitrary characters.
    fc.record({
      kind: fc.constant("text" as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      text: fc.string({ maxLength: 6, unit: "binary" }),
    }),
    // Lie about the header length.
    fc.record({ kind: fc.constant("length" as const), length: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
    fc.record({ kind: fc.constant("nudge" as const), by: fc.integer({ min: -9, max: 9 }) }),
  );
  type Edit = typeof edit extends fc.Arbitrary<infer T> ? T : never;

  function apply(bytes: Uint8Array, edits: Edit[]): Uint8Array {
    const { header, data } = split(bytes);
    let length: bigint | undefined;
    let nudge = 0;
    let text: { at: number; text: string }[] = [];
    for (const e of edits) {
      switch (e.kind) {
        case "set": {
          const existing = Object.hasOwn(header, e.entry) ? header[e.entry] : undefined;
          let target: Record<string, unknown>;
          if (typeof existing === "object" && existing !== null) target = existing as Record<string, unknown>;
          else {
            target = {};
            header[e.entry] = target;
          }
          Object.defineProperty(target, e.field, {
            value: e.value,
            enumerable: true,
            configurable: true,
            writable: true,
          });
          break;
        }
        case "entry":
          Object.defineProperty(header, e.entry, {
            value: e.value,
            enumerable: true,
            configurable: true,
            writable: true,
          });
          break;
        case "delete":
          delete header[e.entry];
          break;
        case "swap": {
          const a = header[e.a] as Record<string, unknown> | undefined,
            c = header[e.c] as Record<string, unknown> | undefined;
          if (a && c && typeof a === "object" && typeof c === "object")
            [a.data_offsets, c.data_offsets] = [c.data_offsets, a.data_offsets];
          break;
        }
        case "text":
          text.push(e);
          break;
        case "length":
          length = e.length;
          break;
        case "nudge":
          nudge += e.by;
          break;
      }
    }
    let json = JSON.stringify(header) ?? "";
    for (const t of text) {
      const p = Math.floor(t.at * json.length);
      json = json.slice(0, p) + t.text + json.slice(p + t.text.length);
    }
    text = [];
    const out = join(json, data, length);
    if (length === undefined && nudge !== 0) {
      new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, Number(u64(out)) + nudge)), true);
    }
    return out;
  }

  it("header edits load consistently or are FORMAT", () => {
    fc.assert(
      fc.property(fileIndex(), fc.array(edit, { minLength: 1, maxLength: 3 }), (i, edits) => {
        outcome(apply(files[i], edits));
      }),
      { numRuns: 3000, seed: SEED + 2 },
    );
  });

  // Issue 12: JSON.parse keeps the last of two equal keys, so a file with a tensor (or a metadata
  // key, or __metadata__) given twice loaded; the format forbids it. And a 10⁵-deep value made the
  // error message throw RangeError.
  it("a key twice in any object (as it is, or escaped), deep nesting, tensors on the same bytes: FORMAT", () => {
    const attack = fc.record({
      kind: fc.constantFrom("entry", "metadata key", "second metadata", "deep", "overlap"),
      at: fc.nat(),
      escaped: fc.boolean(),
      changed: fc.boolean(),
      depth: fc.integer({ min: 2, max: 100_000 }),
    });
    fc.assert(
      fc.property(fileIndex(), attack, (i, a) => {
        const { header, data } = split(files[i]);
        const entries = Object.entries(header);
        const key = (k: string) =>
          a.escaped
            ? `"${[...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"`
            : JSON.stringify(k);
        const parts = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
        const insert = (part: string) => parts.splice(a.at % (parts.length + 1), 0, part);
        const meta = (header.__metadata__ as Record<string, string> | undefined) ?? {
          format: "entrograd",
          version: "1",
        };
        switch (a.kind) {
          case "entry": {
            const [k, v] = entries[a.at % entries.length];
            insert(
              `${key(k)}:${JSON.stringify(a.changed && k !== "__metadata__" ? { ...(v as object), dtype: "F64" } : v)}`,
            );
            break;
          }
          case "metadata key": {
            const k = Object.keys(meta)[a.at % Object.keys(meta).length];
            const text = JSON.stringify(meta);
            const dup = `${text.slice(0, -1)},${key(k)}:${JSON.stringify(a.changed ? "2" : meta[k])}}`;
            const at = entries.findIndex(([name]) => name === "__metadata__");
            if (at >= 0) parts[at] = `"__metadata__":${dup}`;
            else insert(`"__metadata__":${dup}`);
            break;
          }
          case "second metadata":
            insert(`${key("__metadata__")}:${JSON.stringify(a.changed ? { ...meta, version: "1" } : meta)}`);
            if (!("__metadata__" in header)) insert(`"__metadata__":${JSON.stringify(meta)}`);
            break;
          case "deep": {
            const deep = `${"[".repeat(a.depth)}${"]".repeat(a.depth)}`;
            const [k, v] = entries[a.at % entries.length];
            const inner = JSON.stringify(v);
            parts[a.at % entries.length] =
              `${JSON.stringify(k)}:${inner.slice(0, -1)}${inner.length > 2 ? "," : ""}"${k === "__metadata__" ? "x" : "dtype"}":${deep}}`;
            break;
          }
          default: {
            // Two tensors on the same bytes: the data no longer tiles (a hole or an overlap).
            const names = entries.filter(([n]) => n !== "__metadata__").map(([n]) => n);
            if (names.length < 2) return;
            const a0 = names[a.at % names.length],
              a1 = names[(a.at + 1) % names.length];
            const h = structuredClone(header) as Record<string, { data_offsets: number[] }>;
            h[a1].data_offsets = h[a0].data_offsets;
            parts.length = 0;
            for (const [n, v] of Object.entries(h)) parts.push(`${JSON.stringify(n)}:${JSON.stringify(v)}`);
          }
        }
        expect(outcome(join(`{${parts.join(",")}}`, data))).toBe("FORMAT");
      }),
      { numRuns: 2000, seed: SEED + 6 },
    );
  });

  it("arbitrary bytes, and arbitrary bytes behind a plausible header length, are FORMAT", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.integer({ min: 0, max: 300 }),
        fc.boolean(),
        (bytes, n, prefix) => {
          let f = bytes;
          if (prefix) {
            f = new Uint8Array(8 + bytes.length);
            new DataView(f.buffer).setBigUint64(0, BigInt(n), true);
            f.set(bytes, 8);
          }
          expect(outcome(f)).toBe("FORMAT");
        },
      ),
      { numRuns: 1000, seed: SEED + 3 },
    );
  });

  it("the optimizer file: flips and truncations restore consistently or are FORMAT, changing nothing", () => {
    const flip = fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      bit: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(
        fc.array(flip, { minLength: 0, maxLength: 3 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (flips, cut) => {
          total++;
          const f = optimizerFile.slice(
            0,
            cut > 0.9 ? optimizerFile.length : Math.floor(cut * optimizerFile.length * 1.1),
          );
          for (const { at, bit } of flips) f[Math.floor(at * f.length)] ^= 1 << bit;
          const opt = new Adam(optimizerModel, { lr: 0.01 });
          const before = opt.stateDict();
          try {
            opt.load(f);
          } catch (e) {
            if (!(e instanceof EntrogradError && e.code === "FORMAT")) throw e;
            expect(opt.stateDict()).toStrictEqual(before);
          }
        },
      ),
      { numRuns: 800, seed: SEED + 4 },
    );
  });

  it("on wasm-simd too (the same parser, a WebAssembly model)", () => {
    const flip = fc.record({
      at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
      bit: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(fileIndex(), fc.array(flip, { minLength: 1, maxLength: 3 }), (i, flips) => {
        const f = files[i].slice();
        for (const { at, bit } of flips) f[Math.floor(at * f.length)] ^= 1 << bit;
        outcome(f, "wasm-simd");
      }),
      { numRuns: 500, seed: SEED + 5 },
    );
  });

  it(`ran at least 10^4 cases`, () => {
    expect(total).toBeGreaterThanOrEqual(10_000);
  });
});
