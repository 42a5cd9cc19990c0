// A mutation fuzzer of the safetensors parser behind Model.load and Optimizer#load (issue 7).
// Stable, dependency-free: seeded havoc mutations of valid files (bit flips, interesting bytes
// and integers, the header length, inserted/deleted/duplicated ranges, splices of two files,
// truncation) and structure-aware edits of the JSON header (numbers, dtypes, shapes, offsets,
// keys, metadata, nesting), run for a bounded time.
//
// Oracles, for every input:
// * Model.load returns a model or throws EntrogradError FORMAT; any other exception, or a call
//   that takes over a second, is a crash;
// * it accepts exactly the files an independent reading of the format (`modelFileVerdict`
//   below, written from the comments of ts/io/safetensors.ts and Model.load) accepts, and the
//   model it returns holds the file's values bit for bit, finite, and works;
// * save() of an accepted model loads back bitwise;
// * Optimizer#load restores a state that saves back to an equivalent file, or throws FORMAT
//   and changes nothing (state dict and parameters bitwise as before).
//
// Used by test/fuzz.safetensors.test.ts (a few seconds) and by `npm run fuzz` (longer):
//   node test/fuzz/safetensors.mjs --seconds 600 [--seed N]

const MAX_HEADER = 1 << 20;
const MAX_ENTRIES = 1024;
const MAX_RANK = 16;
const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** mulberry32: seeded, small. */
export class Rng {
  constructor(seed) {
    this.s = seed >>> 0;
  }
  next() {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  below(n) {
    return Math.floor(this.next() * n);
  }
  pick(a) {
    return a[this.below(a.length)];
  }
}

// ---- the independent reading of the format ----------------------------------------------------

const isPlain = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * In header text that is valid JSON: a key given twice in one object (the format forbids it;
 * JSON.parse keeps the last), or nesting deeper than the format's 3 levels. Tokens by a regular
 * expression; a string token followed by ":" is a key of the innermost open object.
 */
function keysProblem(text) {
  const tokens = text.match(/"(?:[^"\\]|\\.)*"|[{}[\]:]/g) ?? [];
  const open = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === "{" || t === "[") {
      open.push(t === "{" ? new Set() : null);
      if (open.length > 3) return "nested deeper than 3";
    } else if (t === "}" || t === "]") open.pop();
    else if (t !== ":" && tokens[i + 1] === ":") {
      const key = JSON.parse(t);
      const keys = open[open.length - 1];
      if (keys.has(key)) return "a duplicate key";
      keys.add(key);
    }
  }
  return null;
}

/** The safetensors layer: { header, metadata, tensors: [name, info][], dataStart } or a reason. */
export function fileVerdict(bytes) {
  if (bytes.length < 8) return "short";
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) return "header length above the cap";
  const len = Number(n);
  if (len > bytes.length - 8) return "header length beyond the file";
  if (len < 2 || bytes[8] !== 0x7b) return "header does not start with {";
  let header, text;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + len));
    header = JSON.parse(text);
  } catch {
    return "header not JSON";
  }
  const keys = keysProblem(text);
  if (keys !== null) return keys;
  if (!isPlain(header)) return "header not an object";
  const entries = Object.entries(header);
  if (entries.length > MAX_ENTRIES) return "too many entries";
  const dataStart = 8 + len;
  const dataLength = bytes.length - dataStart;
  let metadata = null;
  const tensors = [];
  for (const [name, v] of entries) {
    if (name === "__metadata__") {
      if (!isPlain(v)) return "metadata not an object";
      const kv = Object.entries(v);
      if (kv.length > MAX_ENTRIES) return "too many metadata entries";
      if (!kv.every(([, s]) => typeof s === "string")) return "metadata value not a string";
      metadata = Object.fromEntries(kv);
      continue;
    }
    if (!isPlain(v)) return `tensor ${name} not an object`;
    const keys = Object.keys(v).sort().join(",");
    if (keys !== "data_offsets,dtype,shape") return `tensor ${name} keys ${keys}`;
    const { dtype, shape, data_offsets: off } = v;
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) return "unknown dtype";
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every(isCount)) return "bad shape";
    if (!Array.isArray(off) || off.length !== 2 || !isCount(off[0]) || !isCount(off[1]) || off[0] > off[1])
      return "bad offsets";
    if (off[1] > dataLength) return "offsets beyond the data";
    // Exact byte count with BigInt (the parser stops early instead; the verdicts must agree).
    let need = BigInt(DTYPE_BYTES[dtype]);
    for (const d of shape) need *= BigInt(d);
    if (need !== BigInt(off[1] - off[0])) return "shape does not match offsets";
    tensors.push([name, { dtype, shape, begin: off[0], end: off[1] }]);
  }
  const spans = tensors.map(([, t]) => [t.begin, t.end]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [b, e] of spans) {
    if (b !== at) return "tensors do not tile the data";
    at = e;
  }
  if (at !== dataLength) return "data not covered";
  return { metadata, tensors, dataStart };
}

const OPTIONAL = ["input_mean", "input_std", "prior"];
/** A metadata number: JSON's number syntax, nothing else. */
const DECIMAL_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/**
 * Model.load's rules on top: { inputs, outputs, w, g, b, stats, prior, sourceEntropy } or a
 * reason string. Optional parts (docs/api.md, "Saving and loading"): F32 tensors input_mean and
 * input_std [inputs] (both or neither) and prior [outputs] (values in [0, 1]); metadata
 * input_min_std (with the statistics only; a positive float32; every input_std at least it;
 * the smallest input_std when absent) and source_entropy (≥ 0, at most float32's largest), both
 * plain decimal numbers. An entrograd file has version "1" or "2".
 */
export function modelFileVerdict(bytes) {
  const f = fileVerdict(bytes);
  if (typeof f === "string") return f;
  const meta = f.metadata;
  if (meta !== null && meta.format === "entrograd") {
    if (meta.version !== "1" && meta.version !== "2") return "unsupported version";
    if (meta.units !== undefined && meta.units !== "bits") return "units not bits";
  }
  const t = new Map(f.tensors);
  for (const name of t.keys())
    if (name !== "w" && name !== "g" && name !== "b" && !OPTIONAL.includes(name)) return "unexpected tensor";
  const w = t.get("w"),
    g = t.get("g"),
    b = t.get("b");
  if (w === undefined || b === undefined) return "w or b missing";
  for (const x of t.values()) if (x.dtype !== "F32") return "not F32";
  if (w.shape.length !== 2 || w.shape[0] < 1 || w.shape[1] < 1) return "w shape";
  const [outputs, inputs] = w.shape;
  if (g !== undefined && (g.shape.length !== 2 || g.shape[0] !== outputs || g.shape[1] !== inputs)) return "g shape";
  if (b.shape.length !== 1 || b.shape[0] !== outputs) return "b shape";
  const read = (x) => {
    const out = new Float32Array((x.end - x.begin) / 4);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + f.dataStart + x.begin, x.end - x.begin);
    for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  };
  const vector = (name, length) => {
    const x = t.get(name);
    if (x === undefined) return null;
    if (x.shape.length !== 1 || x.shape[0] !== length) return "bad shape";
    return read(x);
  };
  const mean = vector("input_mean", inputs),
    std = vector("input_std", inputs),
    prior = vector("prior", outputs);
  for (const v of [mean, std, prior]) if (typeof v === "string") return `${v} of an optional tensor`;
  if ((mean === null) !== (std === null)) return "input_mean without input_std or the reverse";
  const number = (key) => {
    const text = meta?.[key];
    if (text === undefined) return null;
    return DECIMAL_NUMBER.test(text) ? Number(text) : NaN;
  };
  let minStd = number("input_min_std");
  const sourceEntropy = number("source_entropy");
  if (sourceEntropy !== null && !(sourceEntropy >= 0 && sourceEntropy <= 3.4028234663852886e38))
    return "source_entropy";
  const vals = { w: read(w), g: g === undefined ? new Float32Array((w.end - w.begin) >> 2) : read(g), b: read(b) };
  for (const a of [vals.w, vals.g, vals.b, mean, std, prior])
    if (a !== null) for (const v of a) if (!Number.isFinite(v)) return "non-finite value";
  if (std !== null) {
    if (minStd === null) minStd = Math.min(...std);
    if (!(minStd > 0 && minStd <= 3.4028234663852886e38 && Math.fround(minStd) === minStd)) return "input_min_std";
    for (const v of std) if (!(v >= minStd)) return "input_std below input_min_std";
  } else if (minStd !== null) return "input_min_std without statistics";
  if (prior !== null) for (const v of prior) if (!(v >= 0 && v <= 1)) return "prior outside [0, 1]";
  return { inputs, outputs, ...vals, stats: std === null ? null : { mean, std, minStd }, prior, sourceEntropy };
}

/** A model's statistics, prior and source entropy as text (bit-exact: float32 values as numbers). */
function optionalParts(m) {
  const st = m.inputStats;
  return JSON.stringify([st && [...st.mean, ...st.std, st.minStd], m.prior && [...m.prior], m.sourceEntropy]);
}

// ---- mutations -------------------------------------------------------------------------------

const INTERESTING_BYTES = [
  0, 1, 0x7f, 0x80, 0xff, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x2d, 0x65, 0xc0, 0xed,
];
const INTERESTING_NUMBERS = [
  -1,
  0,
  -0,
  1,
  2,
  3,
  4,
  7,
  8,
  15,
  16,
  255,
  256,
  1023,
  1024,
  1025,
  65535,
  65536,
  2 ** 20,
  2 ** 20 + 1,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 8,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  1e308,
  1.5,
  0.5,
  -(2 ** 31),
];
const DTYPES = Object.keys(DTYPE_BYTES).concat(["F128", "f32", "", "F32 ", "float32"]);
const NAMES = [
  "w",
  "g",
  "b",
  "W",
  "w ",
  "__metadata__",
  "__proto__",
  "constructor",
  "toString",
  "w.exp_avg",
  "b.momentum_buffer",
  "x",
  "",
  "é",
  "\u0000",
];

function u64(bytes) {
  return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
}

function splitFile(bytes) {
  const n = u64(bytes);
  return { headerText: new TextDecoder().decode(bytes.subarray(8, 8 + n)), data: bytes.subarray(8 + n) };
}

function joinFile(headerText, data, lengthOverride) {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** One byte-level mutation. */
function havoc(rng, bytes, seeds) {
  const b = bytes.slice();
  const at = () => rng.below(Math.max(1, b.length));
  // Bias towards the header (its first 8 bytes and the JSON).
  const headerAt = () =>
    Math.min(b.length - 1, rng.below(Math.min(b.length, 8 + Math.max(8, Math.min(u64Safe(b), 4096)))));
  switch (rng.below(12)) {
    case 0: {
      if (b.length === 0) return b;
      const i = rng.below(2) ? headerAt() : at();
      b[i] ^= 1 << rng.below(8);
      return b;
    }
    case 1: {
      if (b.length === 0) return b;
      b[rng.below(2) ? headerAt() : at()] = rng.pick(INTERESTING_BYTES);
      return b;
    }
    case 2: {
      if (b.length === 0) return b;
      const i = headerAt();
      b[i] = (b[i] + rng.below(5) - 2) & 0xff;
      return b;
    }
    case 3: {
      // The header length: 64-bit little-endian, lied about.
      if (b.length < 8) return b;
      const dv = new DataView(b.buffer);
      const n = u64Safe(b);
      const v = rng.pick([
        0,
        1,
        2,
        n - 1,
        n + 1,
        n + 8,
        b.length - 8,
        b.length,
        2 ** 20,
        2 ** 20 + 1,
        2 ** 32 + n,
        rng.below(2 ** 32),
      ]);
      dv.setBigUint64(0, BigInt(Math.max(0, Math.floor(v))) & 0xffffffffffffffffn, true);
      if (rng.below(8) === 0) dv.setUint32(4, rng.below(2 ** 32), true);
      return b;
    }
    case 4: {
      const i = at(),
        n = 1 + rng.below(16);
      return concat(b.subarray(0, i), b.subarray(Math.min(b.length, i + n)));
    }
    case 5: {
      const i = at(),
        n = 1 + rng.below(16);
      const ins = new Uint8Array(n).map(() => (rng.below(2) ? rng.pick(INTERESTING_BYTES) : rng.below(256)));
      return concat(b.subarray(0, i), ins, b.subarray(i));
    }
    case 6: {
      const i = at(),
        n = 1 + rng.below(32),
        j = at();
      return concat(b.subarray(0, j), b.subarray(i, i + n), b.subarray(j));
    }
    case 7:
      return b.subarray(0, at());
    case 8: {
      const other = rng.pick(seeds);
      const i = at(),
        j = rng.below(Math.max(1, other.length));
      return concat(b.subarray(0, i), other.subarray(j));
    }
    case 9:
      return concat(
        b,
        new Uint8Array(1 + rng.below(16)).map(() => rng.below(256)),
      );
    case 10: {
      // A float in the data made NaN, ±∞, subnormal or huge.
      const n = u64Safe(b);
      const data = 8 + n;
      if (b.length - data < 4) return b;
      const i = data + 4 * rng.below((b.length - data) >> 2);
      new DataView(b.buffer).setFloat32(i, rng.pick([NaN, Infinity, -Infinity, 1e-45, -0, 3.4e38, 1e30]), true);
      return b;
    }
    default: {
      if (b.length < 4) return b;
      const i = rng.below(2) ? headerAt() : at();
      if (i + 4 > b.length) return b;
      new DataView(b.buffer).setUint32(i, rng.pick([0, 0xffffffff, 0x7fffffff, 0x80000000, rng.below(2 ** 32)]), true);
      return b;
    }
  }
}

function u64Safe(b) {
  if (b.length < 8) return 0;
  const n = u64(b);
  return Number.isSafeInteger(n) ? n : 0;
}

/** A random JSON value of the kinds a header holds (or should not). */
function jsonValue(rng, depth = 0) {
  switch (rng.below(depth > 2 ? 5 : 8)) {
    case 0:
      return rng.pick(INTERESTING_NUMBERS);
    case 1:
      return rng.pick(DTYPES);
    case 2:
      return null;
    case 3:
      return rng.below(2) === 0;
    case 4:
      return rng.pick(NAMES);
    case 5:
      return Array.from({ length: rng.below(4) }, () => jsonValue(rng, depth + 1));
    case 6:
      return Array.from({ length: 1 + rng.below(3) }, () => rng.pick(INTERESTING_NUMBERS));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.below(4) }, () => [
          rng.pick(["dtype", "shape", "data_offsets", "format", "version", "units", ...NAMES]),
          jsonValue(rng, depth + 1),
        ]),
      );
  }
}

/** One structure-aware mutation of the header (parsed, edited, written back). */
function editHeader(rng, bytes) {
  let parts;
  try {
    parts = splitFile(bytes);
  } catch {
    return bytes;
  }
  let h;
  try {
    h = JSON.parse(parts.headerText);
  } catch {
    return bytes;
  }
  if (!isPlain(h)) return bytes;
  const names = Object.keys(h);
  const name = names.length ? rng.pick(names) : "w";
  const t = isPlain(h[name]) ? h[name] : null;
  let text;
  switch (rng.below(14)) {
    case 0:
      if (t) t.dtype = rng.pick(DTYPES);
      break;
    case 1:
      if (t && Array.isArray(t.shape)) {
        const s = t.shape;
        const k = rng.below(4);
        if (k === 0 && s.length) s[rng.below(s.length)] = rng.pick(INTERESTING_NUMBERS);
        else if (k === 1) s.push(rng.pick([1, 1, 0, 2, 4]));
        else if (k === 2) s.pop();
        else t.shape = jsonValue(rng);
      }
      break;
    case 2:
      if (t && Array.isArray(t.data_offsets)) {
        const o = t.data_offsets;
        const i = rng.below(2);
        o[i] = rng.below(2) ? rng.pick(INTERESTING_NUMBERS) : o[i] + rng.pick([-4, -1, 1, 4, 8]);
      }
      break;
    case 3: {
      // Swap two tensors' offsets (or whole entries).
      const other = rng.pick(names);
      if (t && isPlain(h[other])) [t.data_offsets, h[other].data_offsets] = [h[other].data_offsets, t.data_offsets];
      break;
    }
    case 4:
      delete h[name];
      break;
    case 5:
      h[rng.pick(NAMES)] = jsonValue(rng);
      break;
    case 6: {
      if (!isPlain(h.__metadata__)) h.__metadata__ = {};
      const m = h.__metadata__;
      m[rng.pick(["format", "version", "units", "type", "lr", "steps", "w.step", "b.lr", "x"])] = rng.below(4)
        ? rng.pick([
            "entrograd",
            "entrograd-optimizer",
            "1",
            "2",
            "bits",
            "nats",
            "SGD",
            "Adam",
            "0.1",
            "-1",
            "1e999",
            "NaN",
            "4294967296",
            " ",
            "",
            "1.5",
            // Numbers save() would never write: refused (only its own decimal forms are read).
            "0x10",
            "1e-50",
            " 0.1",
            "0.10",
            "1e-1",
            "+1",
            "Infinity",
          ])
        : jsonValue(rng);
      break;
    }
    case 7:
      if (t) t[rng.pick(["extra", "dtype ", "DTYPE", "shape"])] = jsonValue(rng);
      break;
    case 8: {
      // Rename a tensor.
      const v = h[name];
      delete h[name];
      h[rng.pick(NAMES)] = v;
      break;
    }
    case 9:
      text = JSON.stringify(h).replace(/\d+/, () => String(rng.pick(INTERESTING_NUMBERS)));
      break;
    case 10: {
      // Deep nesting, long strings, duplicate keys, a BOM, trailing junk: raw text edits.
      const s = JSON.stringify(h);
      const k = rng.below(9);
      if (k === 0) text = `${s.slice(0, -1)},"deep":${"[".repeat(5000 + rng.below(50000))}${"]".repeat(5000)}}`;
      else if (k === 1) text = `${s.slice(0, -1)},"long":"${"x".repeat(rng.below(1 << 19))}"}`;
      else if (k === 2) text = s.replace(/^\{/, `{"${name}":${JSON.stringify(jsonValue(rng))},`);
      else if (k === 3) text = `\ufeff${s}`;
      else if (k === 4) text = s + rng.pick([" ", "\n", "x", "}", "\u0000", ",{}"]);
      else if (k === 5) text = s.replace(/"/, rng.pick(["'", '\\"', "\\u0022", '"\u0000']));
      else if (k === 6) {
        // An entry again, as it is (its data still tiles: JSON.parse alone would accept this),
        // or with its name escaped differently.
        const again =
          rng.below(2) === 0
            ? JSON.stringify(name)
            : `"${[...name].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"`;
        text = `${s.slice(0, -1)},${again}:${JSON.stringify(h[name] ?? null)}}`;
      } else if (k === 7) {
        // A key twice inside __metadata__, or a second __metadata__ object.
        const m = isPlain(h.__metadata__) ? h.__metadata__ : { format: "entrograd", version: "1" };
        const inner = JSON.stringify(m);
        const dup = `${inner.slice(0, -1)}${Object.keys(m).length ? "," : ""}"version":"${rng.pick(["1", "2"])}"}`;
        text = rng.below(2) === 0 ? s.replace(inner, dup) : `${s.slice(0, -1)},"__metadata__":${inner}}`;
      } else {
        // Two tensors on the same bytes (each entry alone is valid; together they overlap).
        const other = rng.pick(names);
        if (t && isPlain(h[other])) h[other].data_offsets = t.data_offsets;
        text = JSON.stringify(h);
      }
      break;
    }
    case 11:
      // Tensors in another order (as other writers lay them out); data untouched.
      text = JSON.stringify(Object.fromEntries(Object.entries(h).reverse()));
      break;
    case 12:
      text = JSON.stringify(h) + " ".repeat(rng.below(16));
      break;
    default:
      if (t) t.data_offsets = jsonValue(rng);
  }
  text ??= JSON.stringify(h);
  // Usually the true length; sometimes not.
  const length =
    rng.below(10) === 0 ? Math.max(0, new TextEncoder().encode(text).length + rng.pick([-2, -1, 1, 2])) : undefined;
  return joinFile(text, parts.data, length);
}

function mutate(rng, seeds) {
  let b = rng.pick(seeds);
  const n = 1 + rng.below(rng.below(4) === 0 ? 8 : 3);
  for (let k = 0; k < n; k++) b = rng.below(3) === 0 ? editHeader(rng, b) : havoc(rng, b, seeds);
  return b;
}

// ---- the loop ----------------------------------------------------------------------------------

const bitsOf = (a) => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
const sameBits = (a, b) => a.length === b.length && bitsOf(a).every((v, i) => v === bitsOf(b)[i]);

function stateKey(opt) {
  return JSON.stringify(opt.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(bitsOf(v)) : v));
}

function toBase64(b) {
  return Buffer.from(b).toString("base64");
}

/**
 * Runs the fuzzer. `pkg` is the entrograd module (so the caller decides which build);
 * `corpus` extra seed files (crashes found earlier). Returns figures; throws an Error whose
 * message carries the failing input (base64) on the first violation.
 */
export async function fuzzSafetensors(
  pkg,
  { seconds = 4, seed = 2026, corpus = [], backend = "js", log = () => {} } = {},
) {
  const { Model, SGD, Adam, EntrogradError, init } = pkg;
  await init();
  const rng = new Rng(seed);
  // Seeds: models of several shapes (with g, without g, another writer's order), optimizer files.
  const seeds = [];
  const shapes = [
    [1, 1],
    [3, 2],
    [4, 4],
    [7, 5],
    [16, 3],
  ];
  for (const [i, o] of shapes) {
    const m = new Model({ inputs: i, outputs: o, seed: i * 7 + o, backend: "js" });
    m.g.fill(0.25);
    m.b.fill(-0.5);
    seeds.push(m.save());
    // The optional parts too: input statistics, a prior, a source entropy.
    m.setInputStats(
      Array.from({ length: i }, (_, k) => k - 1),
      Array.from({ length: i }, (_, k) => 0.5 * k),
      { minStd: 0.25 },
    );
    m.setPrior(Array.from({ length: o }, (_, k) => 1 / (k + 2)));
    if (i % 2 === 1) m.setSourceEntropy(0.75);
    seeds.push(m.save());
    m.dispose();
  }
  const optimizers = [];
  for (const [Opt, options] of [
    [SGD, { lr: 0.1, momentum: 0.9 }],
    [Adam, { lr: 0.01 }],
    [SGD, { lr: 0.1, momentum: 0.5, groups: { g: { frozen: true } } }],
  ]) {
    const m = new Model({ inputs: 4, outputs: 3, seed: 3, backend });
    const opt = new Opt(m, options);
    opt.step(new Float32Array(8).map((_, k) => (k % 3) - 1));
    seeds.push(opt.save());
    optimizers.push({ m, opt, Opt, options });
  }
  for (const c of corpus) seeds.push(c);

  const stats = { cases: 0, accepted: 0, rejected: 0, optimizerCases: 0, optimizerAccepted: 0, slowest: 0, seed };
  const fail = (what, input) => {
    throw new Error(
      `fuzz safetensors (seed ${seed}, case ${stats.cases}): ${what}\ninput (base64): ${toBase64(input)}`,
    );
  };
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const input = mutate(rng, seeds);
    stats.cases++;
    // --- Model.load
    const verdict = modelFileVerdict(input);
    const t0 = performance.now();
    let m = null,
      err = null;
    try {
      m = Model.load(input, { backend });
    } catch (e) {
      err = e;
    }
    const dt = performance.now() - t0;
    stats.slowest = Math.max(stats.slowest, dt);
    if (dt > 1000) fail(`Model.load took ${dt.toFixed(0)} ms`, input);
    if (err !== null) {
      if (!(err instanceof EntrogradError) || err.code !== "FORMAT") fail(`Model.load threw ${err?.stack}`, input);
      if (typeof verdict !== "string") fail(`Model.load rejected a valid file: ${err.message}`, input);
      stats.rejected++;
    } else {
      if (typeof verdict === "string") fail(`Model.load accepted a file the format forbids (${verdict})`, input);
      stats.accepted++;
      if (m.inputs !== verdict.inputs || m.outputs !== verdict.outputs) fail("wrong shape", input);
      for (const k of ["w", "g", "b"]) if (!sameBits(m[k], verdict[k])) fail(`${k} differs from the file`, input);
      const st = m.inputStats;
      if ((st === null) !== (verdict.stats === null)) fail("statistics present in one of file and model", input);
      if (st !== null) {
        if (!sameBits(st.mean, verdict.stats.mean) || !sameBits(st.std, verdict.stats.std))
          fail("statistics differ", input);
        if (st.minStd !== verdict.stats.minStd) fail("input_min_std differs", input);
      }
      const prior = m.prior;
      if ((prior === null) !== (verdict.prior === null) || (prior !== null && !sameBits(prior, verdict.prior)))
        fail("prior differs", input);
      if (m.sourceEntropy !== verdict.sourceEntropy) fail("source entropy differs", input);
      // It works: on x = 0 (x = the mean with statistics, so x̃ = 0), z = b; only w + g beyond
      // float32 (finite values near 3.4e38) can stop it, and then with NON_FINITE.
      let h = NaN,
        e3 = null;
      try {
        h = m.entropy(st === null ? new Float32Array(m.inputs) : st.mean);
      } catch (e) {
        e3 = e;
      }
      if (e3 !== null) {
        const overflow = m.w.some((v, k) => !Number.isFinite(Math.fround(v + m.g[k])));
        if (!(e3 instanceof EntrogradError && e3.code === "NON_FINITE" && overflow))
          fail(`a loaded model failed: ${e3}`, input);
      } else if (!Number.isFinite(h)) fail("the loaded model gives a non-finite entropy", input);
      const again = Model.load(m.save(), { backend });
      for (const k of ["w", "g", "b"]) if (!sameBits(again[k], m[k])) fail(`save/load round trip changed ${k}`, input);
      if (optionalParts(again) !== optionalParts(m)) fail("save/load round trip changed the optional parts", input);
      again.dispose();
      m.dispose();
    }
    // --- Optimizer#load, on every fourth case
    if (stats.cases % 4 === 0) {
      stats.optimizerCases++;
      const o = rng.pick(optimizers);
      const before = stateKey(o.opt),
        params = ["w", "g", "b"].map((k) => o.m[k].slice());
      let e2 = null;
      try {
        o.opt.load(input);
      } catch (e) {
        e2 = e;
      }
      if (e2 !== null) {
        if (!(e2 instanceof EntrogradError) || e2.code !== "FORMAT")
          fail(`${o.Opt.name}#load threw ${e2?.stack}`, input);
        if (stateKey(o.opt) !== before) fail(`${o.Opt.name}#load failed but changed the state`, input);
      } else {
        stats.optimizerAccepted++;
        // Only the number forms save() writes, and no negative second moment, were accepted
        // (among the numbers this optimizer reads: SGD has no per-parameter step).
        const meta = fileVerdict(input).metadata ?? {};
        const numbers = o.Opt === SGD ? /^(lr|steps|[wgb]\.lr)$/ : /^(lr|steps|[wgb]\.(lr|step))$/;
        for (const [k, v] of Object.entries(meta))
          if (numbers.test(k) && String(Number(v)) !== v)
            fail(`${o.Opt.name}#load accepted __metadata__.${k} = ${JSON.stringify(v)}`, input);
        for (const p of ["w", "g", "b"]) {
          const v = o.opt.stateDict().state[p].expAvgSq;
          if (v instanceof Float32Array && v.some((x) => x < 0)) fail("restored a negative exp_avg_sq", input);
        }
        // What it restored saves back to a file that restores the same state.
        const saved = o.opt.save();
        const twin = new o.Opt(o.m, o.options);
        twin.load(saved);
        if (stateKey(twin) !== stateKey(o.opt)) fail(`${o.Opt.name}: load(save()) differs`, input);
        const sd = o.opt.stateDict();
        for (const p of ["w", "g", "b"]) {
          for (const v of Object.values(sd.state[p])) {
            if (v instanceof Float32Array && !v.every(Number.isFinite)) fail("restored a non-finite buffer", input);
          }
        }
        // Back to the seed state for the next case.
        o.opt.load(seeds[seeds.length - corpus.length - optimizers.length + optimizers.indexOf(o)]);
      }
      ["w", "g", "b"].forEach((k, i) => {
        if (!sameBits(o.m[k], params[i])) fail("Optimizer#load changed the parameters", input);
      });
    }
    if (stats.cases % 5000 === 0) log(stats);
  }
  for (const o of optimizers) o.m.dispose();
  return stats;
}

// ---- command line ------------------------------------------------------------------------------

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const pkg = await import(new URL("../../dist/index.js", import.meta.url).href);
  const seconds = arg("seconds", 60),
    seed = arg("seed", Date.now() % 2 ** 31);
  const t0 = Date.now();
  const stats = await fuzzSafetensors(pkg, {
    seconds,
    seed,
    backend: process.argv.includes("--wasm") ? "wasm-simd" : "js",
    log: (s) =>
      console.error(
        `  ${s.cases} cases, ${s.accepted} models accepted, ${s.optimizerAccepted} optimizer files accepted`,
      ),
  });
  console.log(JSON.stringify({ fuzz: "safetensors", ...stats, seconds: (Date.now() - t0) / 1000 }));
}
