// The safetensors format (https://huggingface.co/docs/safetensors), read by a hardened parser
// and written as Python's `safetensors` package writes it:
//
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   a JSON object, UTF-8, starting with "{" (padded with spaces):
//             { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, ...,
//               "__metadata__": { "<key>": "<string>", ... } }          (metadata optional)
//   the data  every tensor's bytes, little-endian, at [begin, end) relative to the data start
//
// The parser trusts nothing: N is checked against the file size and a cap before anything is
// decoded, the JSON must decode (fatal UTF-8) and have exactly this shape, dtypes must be
// known, shapes must be whole numbers whose byte count equals the offsets' span, and the
// tensors must tile the data exactly (in bounds, contiguous, non-overlapping, no hole, nothing
// after). No key may appear twice in any object of the header (the format forbids it, and
// Python's safetensors refuses such files; JSON.parse would silently keep the last), and nothing
// nests deeper than the format's three levels. Every failure is an EntrogradError with code
// FORMAT; nothing is allocated beyond the file's own size.

import { fail, show } from "../errors.js";
import { bytesView } from "../options.js";

/** Largest header accepted: 1 MiB (safetensors itself caps it at 100 MB; ours hold a few tensors). */
export const MAX_HEADER_BYTES = 1 << 20;
/** Most tensors and metadata entries accepted in one header. */
export const MAX_ENTRIES = 1024;
/** Highest rank accepted. */
const MAX_RANK = 16;
/** Deepest nesting of objects and arrays in a header: { tensor: { shape: [..] } } is 3. */
const MAX_DEPTH = 3;

const DTYPE_BYTES: Readonly<Record<string, number>> = {
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

export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** Byte offsets in the file (not relative to the data). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  bytes: Uint8Array;
  metadata: Record<string, string> | null;
  tensors: Map<string, TensorInfo>;
}

export interface TensorOut {
  name: string;
  shape: number[];
  data: Float32Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Whole numbers JSON can carry exactly. */
function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Bytes as a plain Uint8Array view (no copy; a detached buffer has none), or OPTION for
 *  something that is not bytes. */
export function asBytes(bytes: unknown, what: string): Uint8Array {
  const view = bytesView(bytes);
  if (view === null)
    fail("OPTION", `${what}: expected the file's bytes (a Uint8Array), got ${bytes === null ? "null" : typeof bytes}`);
  return view;
}

/**
 * Checks a header's JSON text before JSON.parse sees it: no object may hold a key twice (compared
 * as decoded, so "b" and "\u0062" are the same key), and nothing nests deeper than MAX_DEPTH.
 * Returns why not, or null. Text that is not JSON at all is left to JSON.parse.
 */
function duplicateOrDeep(text: string): string | null {
  // One set of keys per open object (null for an array); `key` when the next string is a key.
  const open: (Set<string> | null)[] = [];
  let key = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      const keys = open[open.length - 1];
      if (key && keys !== undefined && keys !== null) {
        let name: string;
        try {
          name = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          return null; // not a JSON string: JSON.parse will say so
        }
        if (keys.has(name)) return `the key ${show(name.slice(0, 64))} appears twice in one object`;
        keys.add(name);
      }
      key = false;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (open.length === MAX_DEPTH) return `values nested deeper than ${MAX_DEPTH} levels`;
      open.push(c === 0x7b ? new Set<string>() : null);
      key = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
      key = false;
    } else if (c === 0x2c /* , */) {
      key = open[open.length - 1] instanceof Set;
    }
  }
  return null;
}

export function parseSafetensors(input: unknown, what: string): SafetensorsFile {
  const bytes = asBytes(input, what);
  const bad: (why: string) => never = (why) => fail("FORMAT", `${what}: not a valid safetensors file: ${why}`);
  if (bytes.length < 8) bad(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true),
    hi = view.getUint32(4, true);
  if (hi !== 0 || lo > MAX_HEADER_BYTES)
    bad(`the header length ${hi * 2 ** 32 + lo} exceeds the cap of ${MAX_HEADER_BYTES} bytes`);
  const n = lo;
  if (n > bytes.length - 8) bad(`the header length ${n} exceeds the ${bytes.length - 8} bytes after it`);
  if (n < 2 || bytes[8] !== 0x7b) bad('the header does not start with "{"');
  let text: string;
  try {
    // A copy first: a SharedArrayBuffer's bytes could change while they are decoded.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.slice(8, 8 + n));
  } catch {
    bad("the header is not UTF-8");
  }
  const why = duplicateOrDeep(text);
  if (why !== null) bad(`the header is not a safetensors header: ${why}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    bad(`the header is not JSON (${e instanceof Error ? e.message.slice(0, 120) : "?"})`);
  }
  if (!isPlainObject(header)) bad("the header is not a JSON object");
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const entries = Object.entries(header);
  if (entries.length > MAX_ENTRIES) bad(`${entries.length} entries in the header (at most ${MAX_ENTRIES})`);
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, TensorInfo>();
  const spans: [number, number, string][] = [];
  for (const [name, value] of entries) {
    if (name === "__metadata__") {
      if (!isPlainObject(value)) bad("__metadata__ is not an object");
      const m: Record<string, string> = Object.create(null) as Record<string, string>;
      const kv = Object.entries(value);
      if (kv.length > MAX_ENTRIES) bad(`${kv.length} metadata entries (at most ${MAX_ENTRIES})`);
      for (const [k, v] of kv) {
        if (typeof v !== "string") bad(`__metadata__.${show(k)} is not a string`);
        m[k] = v;
      }
      metadata = m;
      continue;
    }
    const label = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
    if (!isPlainObject(value)) bad(`tensor ${label} is not an object`);
    const keys = Object.keys(value);
    if (keys.length !== 3 || !("dtype" in value && "shape" in value && "data_offsets" in value)) {
      bad(`tensor ${label} must have exactly dtype, shape and data_offsets`);
    }
    const { dtype, shape, data_offsets: offsets } = value as { dtype: unknown; shape: unknown; data_offsets: unknown };
    if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      bad(
        `tensor ${label} has an unknown dtype ${typeof dtype === "string" ? show(dtype.slice(0, 32)) : `(a JSON ${dtype === null ? "null" : Array.isArray(dtype) ? "array" : typeof dtype})`}`,
      );
    }
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every(isCount)) {
      bad(`tensor ${label} has an invalid shape (a list of at most ${MAX_RANK} whole numbers)`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !isCount(offsets[0]) ||
      !isCount(offsets[1]) ||
      offsets[0] > offsets[1]
    ) {
      bad(`tensor ${label} has invalid data_offsets (two whole numbers, begin ≤ end)`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) bad(`tensor ${label} ends at ${end}, beyond the ${dataLength} bytes of data`);
    // Element count, stopping as soon as it cannot fit the data (no overflow, no big numbers).
    let bytesNeeded = (shape as number[]).includes(0) ? 0 : DTYPE_BYTES[dtype];
    for (const d of shape as number[]) {
      bytesNeeded *= d;
      if (bytesNeeded > dataLength) break;
    }
    if (bytesNeeded !== end - begin) {
      bad(
        `tensor ${label}: shape [${(shape as number[]).join(", ")}] of ${dtype} does not match data_offsets [${begin}, ${end}]`,
      );
    }
    tensors.set(name, { dtype, shape: (shape as number[]).slice(), begin: dataStart + begin, end: dataStart + end });
    spans.push([begin, end, label]);
  }
  // The tensors tile the data: sorted by offset, each starts where the last ended, no hole,
  // nothing after the last.
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end, label] of spans) {
    if (begin !== at)
      bad(begin < at ? `tensor ${label} overlaps another` : `a hole in the data before tensor ${label}`);
    at = end;
  }
  if (at !== dataLength) bad(`${dataLength - at} bytes of data that no tensor covers`);
  return { bytes, metadata, tensors };
}

/** A tensor's F32 values (little-endian in the file), checked finite: FORMAT otherwise. */
export function readF32(file: SafetensorsFile, t: TensorInfo, name: string, what: string): Float32Array {
  if (t.dtype !== "F32") fail("FORMAT", `${what}: tensor ${name} is ${t.dtype}, not F32`);
  const n = (t.end - t.begin) / 4;
  const out = new Float32Array(n);
  const b = file.bytes;
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(b.subarray(t.begin, t.end));
  } else {
    const v = new DataView(b.buffer, b.byteOffset + t.begin, t.end - t.begin);
    for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(out[i])) fail("FORMAT", `${what}: tensor ${name}[${i}] is ${out[i]}`);
  }
  return out;
}

/** A safetensors file of F32 tensors, laid out as Python's safetensors writes it (header padded
 * with spaces to a multiple of 8 bytes, tensors in the given order). */
export function writeSafetensors(tensors: readonly TensorOut[], metadata: Record<string, string> | null): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== null) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    const bytes = t.data.length * 4;
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + n + at);
  const view = new DataView(out.buffer);
  view.setUint32(0, n, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let p = 8 + n;
  for (const t of tensors) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length * 4), p);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(p + 4 * i, t.data[i], true);
    }
    p += t.data.length * 4;
  }
  return out;
}
