// Model-based test (fast-check commands, issue 7): random sequences of the public API's calls on
// random models, each model living on all three backends at once, 10⁴ sequences. Inputs come in
// every form the API allows: fresh arrays, offset subarrays, the m.input() staging view, and views
// of the core's own memory (this model's last z or d, another model's staging or d). Checked
// after every command:
// * results match the float64 reference at each backend's current parameters, and wasm-simd and
//   wasm stay bitwise equal (parameters included, step after step);
// * a call that throws throws EntrogradError with the expected code and leaves parameters and
//   optimizer state bitwise as they were;
// * result views held from one model are not changed by work on another (unless memory grew,
//   which may only detach them);
// * disposed models answer DISPOSED; clones and save/load copies are bitwise equal;
// * views kept past dispose() (w, g, b, m.input(), forward's z and d, gradients' dw and db),
//   written with garbage, change no other model, optimizer or held view, and the later
//   commands (steps against the reference, new models) still work (issue 12);
// * SGD steps (clipped or not) move the parameters as the float64 reference says;
// * a step re-entered from a getter of its options is the two steps in sequence (issue 12), and
//   x near the float32 limit, where float32 sums overflow partway, gives every backend the same
//   outcome (the overflow rule of docs/api.md).
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import { Adam, EntrogradError, init, Model, SGD, memoryBytes } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend, bits, defined, paramsOf } from "./helpers";
import {
  EPS32,
  F32_MAX,
  RUNS,
  TINY32,
  check,
  close,
  sameBits,
  settings,
  tolerancesWithFloor,
  uniform,
} from "./property.helpers";

beforeAll(async () => {
  await init();
});

type AnyModel = InstanceType<typeof Model>;
type AnyOpt = InstanceType<typeof SGD> | InstanceType<typeof Adam>;

interface Copy {
  m: AnyModel;
  opt: AnyOpt | null;
  /** Parameter bits after the last command on this slot: work on others must not change them. */
  snap: { w: Uint32Array; g: Uint32Array; b: Uint32Array } | null;
  /** The views `held` had when the current call began (inputs of kind ownZ / ownD). */
  prev?: Copy["held"];
  /** The last forward's z and d views, with a bit snapshot, to check isolation. */
  held: {
    z: Float32Array;
    d: Float32Array;
    zBits: Uint32Array;
    dBits: Uint32Array;
    memory: number;
    /** From x near the float32 limit: not reused as an input (z would overflow anything). */
    huge: boolean;
  } | null;
}
/** How a slot's optimizer was made (the reference needs it). */
interface OptSettings {
  kind: "sgd" | "adam";
  lr: number;
  momentum: number;
  frozenG: boolean;
}
interface Slot {
  inputs: number;
  outputs: number;
  copies: Map<Backend, Copy>;
  disposed: boolean;
  opt: "sgd" | "adam" | null;
  settings?: OptSettings;
}
/** A view the user kept (issue 12): written with garbage once its model is disposed. */
interface Kept {
  slot: Slot;
  backend: Backend;
  view: Float32Array;
}
interface Real {
  slots: Slot[];
  kept: Kept[];
}
interface Abstract {
  slots: { inputs: number; outputs: number; disposed: boolean; opt: "sgd" | "adam" | null }[];
}

const MAX_SLOTS = 3;

/** Deterministic test data from a seed (so every backend gets the same arrays). */
function data(seed: number, n: number, lo = -1, hi = 1): Float32Array {
  return new ref.Rng(seed).floats(n, lo, hi);
}

function paramsBits(m: AnyModel) {
  return { w: bits(m.w), g: bits(m.g), b: bits(m.b) };
}
/** A slot's copy on one backend (every slot has one per backend). */
function copyOn(s: Slot, backend: Backend): Copy {
  return defined(s.copies.get(backend), `the slot's copy on ${backend}`);
}
/** wasm-simd's and wasm's results of an onAll call. */
function wasmPair(res: Map<Backend, Float32Array>): [Float32Array, Float32Array] {
  return [defined(res.get("wasm-simd"), "wasm-simd result"), defined(res.get("wasm"), "wasm result")];
}
function stateOf(opt: AnyOpt | null): string {
  if (opt === null) return "";
  return JSON.stringify(opt.stateDict(), (_, v) => (v instanceof Float32Array ? Array.from(bits(v)) : v));
}

/** After every command: wasm-simd and wasm hold the same bits; other slots' parameters and
 *  held views intact (touched = -1: every slot may have been used). */
function invariants(r: Real, touched: number): void {
  r.slots.forEach((s, i) => {
    if (s.disposed) return;
    const a = copyOn(s, "wasm-simd").m,
      b = copyOn(s, "wasm").m;
    for (const k of ["w", "g", "b"] as const)
      check(sameBits(a[k], b[k]), () => `slot ${i}: ${k} differs between wasm-simd and wasm`);
    for (const [backend, c] of s.copies) {
      const now = paramsBits(c.m);
      const snap = c.snap;
      if (i !== touched && touched !== -1 && snap !== null) {
        for (const k of ["w", "g", "b"] as const) {
          check(
            now[k].every((v, j) => v === snap[k][j]),
            () => `slot ${i} on ${backend}: ${k} changed by work on slot ${touched}`,
          );
        }
      }
      c.snap = now;
    }
    if (i === touched) return;
    for (const [backend, c] of s.copies) {
      const h = c.held;
      if (h === null) continue;
      // A held view is valid until the next call on its own model: work on another model may
      // only detach it (memory growth), never change it.
      if (h.z.length === 0 || memoryBytes(backend === "js" ? "js" : backend) !== h.memory) continue;
      check(
        sameBits(h.z, new Float32Array(new Uint32Array(h.zBits).buffer)) &&
          sameBits(h.d, new Float32Array(new Uint32Array(h.dBits).buffer)),
        () => `slot ${i} on ${backend}: a held result view changed under work on slot ${touched}`,
      );
    }
  });
}

/** Runs fn on every backend's copy; all must throw the same code or none; returns the results. */
function onAll<T>(s: Slot, fn: (c: Copy, backend: Backend) => T, label: string): Map<Backend, T> | string {
  const out = new Map<Backend, T>();
  const codes: (string | null)[] = [];
  for (const backend of BACKENDS) {
    const c = copyOn(s, backend);
    const before = s.disposed ? null : { p: paramsBits(c.m), st: stateOf(c.opt) };
    c.prev = c.held;
    c.held = null; // a call on this model: its earlier result views are void (Forward sets new ones)
    try {
      out.set(backend, fn(c, backend));
      codes.push(null);
    } catch (e) {
      if (!(e instanceof EntrogradError)) throw e;
      codes.push(e.code);
      if (before !== null) {
        const now = paramsBits(c.m);
        for (const k of ["w", "g", "b"] as const)
          check(
            now[k].every((v, j) => v === before.p[k][j]),
            () => `${label} on ${backend}: ${e.code} but ${k} changed`,
          );
        check(stateOf(c.opt) === before.st, () => `${label} on ${backend}: ${e.code} but the optimizer state changed`);
      }
    }
  }
  check(
    codes.every((c) => c === codes[0]),
    () => `${label}: backends disagree: ${codes.join(", ")}`,
  );
  return codes[0] === null ? out : codes[0];
}

// ---- inputs -------------------------------------------------------------------------------------

type XKind = "fresh" | "offset" | "staged" | "ownZ" | "ownD" | "otherStaged" | "huge";
const xKind = fc.constantFrom<XKind>("fresh", "fresh", "offset", "staged", "ownZ", "ownD", "otherStaged");
/** Forward also takes x near the float32 limit (±2¹²⁷): float32 sums of its products overflow
 *  partway, while the result may fit. */
const forwardXKind = fc.oneof({ weight: 7, arbitrary: xKind }, { weight: 1, arbitrary: fc.constant<XKind>("huge") });

/** The batch as the kind asks, for one copy; falls back to a fresh array when it cannot apply. */
function makeX(r: Real, s: Slot, c: Copy, backend: Backend, kind: XKind, batch: number, seed: number): Float32Array {
  const n = batch * s.inputs;
  const values = data(seed, n);
  switch (kind) {
    case "huge":
      return Float32Array.from(values, (v) => (v < 0 ? -(2 ** 127) : 2 ** 127));
    case "offset": {
      const big = new Float32Array(n + 7);
      big.set(values, 3);
      return big.subarray(3, 3 + n);
    }
    case "staged": {
      const v = c.m.input(batch);
      v.set(values);
      return v;
    }
    case "ownZ":
    case "ownD": {
      // The model's own last results (batch' = len / inputs rows), when they divide evenly.
      const h = c.prev ?? null;
      if (h === null || h.huge) return values;
      const v = kind === "ownZ" ? h.z : h.d;
      if (v.length > 0 && v.length % s.inputs === 0 && v.length === h.zBits.length) return v;
      return values;
    }
    case "otherStaged": {
      const other = r.slots.find((o) => o !== s && !o.disposed && o.inputs === s.inputs);
      if (other === undefined) return values;
      const oc = copyOn(other, backend);
      const v = oc.m.input(batch);
      oc.held = null; // input() is a call on that model: its result views are void
      v.set(values);
      return v;
    }
    default:
      return values;
  }
}

// ---- commands -----------------------------------------------------------------------------------

const dims = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 5 }) },
  { weight: 1, arbitrary: fc.integer({ min: 6, max: 9 }) },
);

class NewSlot implements fc.Command<Abstract, Real> {
  constructor(
    readonly inputs: number,
    readonly outputs: number,
    readonly seed: number,
    readonly how: "new" | "from",
  ) {}
  check = (m: Readonly<Abstract>) => m.slots.length < MAX_SLOTS;
  run(m: Abstract, r: Real): void {
    const copies = new Map<Backend, Copy>();
    for (const backend of BACKENDS) {
      const model =
        this.how === "new"
          ? new Model({ inputs: this.inputs, outputs: this.outputs, seed: this.seed, backend })
          : Model.from({
              inputs: this.inputs,
              outputs: this.outputs,
              backend,
              w: data(this.seed, this.inputs * this.outputs),
              g: data(this.seed + 1, this.inputs * this.outputs, -0.2, 0.2),
              b: data(this.seed + 2, this.outputs, -0.5, 0.5),
            });
      copies.set(backend, { m: model, opt: null, held: null, snap: null });
    }
    r.slots.push({ inputs: this.inputs, outputs: this.outputs, copies, disposed: false, opt: null });
    m.slots.push({ inputs: this.inputs, outputs: this.outputs, disposed: false, opt: null });
    invariants(r, r.slots.length - 1);
  }
  toString = () => `new(${this.inputs}×${this.outputs}, ${this.how}, seed ${this.seed})`;
}

abstract class OnSlot implements fc.Command<Abstract, Real> {
  constructor(readonly slot: number) {}
  check(m: Readonly<Abstract>): boolean {
    return m.slots.length > 0;
  }
  idx(r: Real | Abstract): number {
    return this.slot % r.slots.length;
  }
  abstract run(m: Abstract, r: Real): void;
  abstract toString(): string;
}

class Forward extends OnSlot {
  constructor(
    slot: number,
    readonly kind: XKind,
    readonly batch: number,
    readonly seed: number,
  ) {
    super(slot);
  }
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    let overflows = false; // the exact z of some unit is beyond float32 (then NON_FINITE)
    const res = onAll(
      s,
      (c, backend) => {
        const x = makeX(r, s, c, backend, this.kind, this.batch, this.seed);
        const xs = x.slice();
        const p = paramsOf(c.m);
        const e = ref.evaluate(p, xs);
        if (e.z.some((z) => !(Math.abs(z) <= F32_MAX))) overflows = true;
        const out = c.m.forward(x);
        const t = tolerancesWithFloor(p, xs, e);
        close(out.z, e.z, t.z, `forward z (${backend})`);
        close(out.d, e.d, t.d, `forward d (${backend})`);
        c.held = {
          z: out.z,
          d: out.d,
          zBits: bits(out.z),
          dBits: bits(out.d),
          memory: memoryBytes(backend === "js" ? "js" : backend),
          huge: this.kind === "huge",
        };
        return out.z.slice();
      },
      this.toString(),
    );
    if (typeof res === "string")
      check(
        (res === "DISPOSED" && s.disposed) || (res === "NON_FINITE" && this.kind === "huge" && overflows),
        () => `${this}: ${res}`,
      );
    else check(sameBits(...wasmPair(res)), () => `${this}: z differs between wasm-simd and wasm`);
    invariants(r, i);
  }
  toString = () => `forward(slot ${this.slot}, ${this.kind}, batch ${this.batch})`;
}

class Gradients extends OnSlot {
  constructor(
    slot: number,
    readonly batch: number,
    readonly seed: number,
    readonly objective: number,
    readonly reduction: "mean" | "sum" | "none",
    readonly distill: boolean,
  ) {
    super(slot);
  }
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const obj = [undefined, { crossEntropy: 1 }, { entropy: 0.5, crossEntropy: 0.75 }][this.objective];
    const res = onAll(
      s,
      (c, backend) => {
        const x = data(this.seed, this.batch * s.inputs);
        let targets: Float32Array | undefined;
        if (obj !== undefined && "crossEntropy" in obj) {
          // Distillation: another model's d (a view of the core's memory) when shapes allow.
          const teacher = r.slots.find(
            (o) => o !== s && !o.disposed && o.inputs === s.inputs && o.outputs === s.outputs,
          );
          if (this.distill && teacher !== undefined) {
            const tc = copyOn(teacher, backend);
            targets = tc.m.forward(x).d;
            tc.held = null; // a call on the teacher: its earlier views are void
          } else {
            targets = data(this.seed + 5, this.batch * s.outputs, 0, 1);
          }
        }
        const opts = { objective: obj, targets, reduction: this.reduction };
        const ys = targets?.slice();
        const p = paramsOf(c.m);
        const g = c.m.gradients(x, opts);
        const e = ref.evaluate(p, x, { ...opts, targets: ys });
        const t = tolerancesWithFloor(p, x, e, { ...opts, targets: ys });
        close(g.dw, e.dw, t.dw, `dw (${backend})`);
        close(g.db, e.db, t.db, `db (${backend})`);
        if (this.reduction === "none")
          close(g.loss as Float32Array, e.unitLoss, t.unitLoss, `loss per unit (${backend})`);
        else close([g.loss as number], [e.loss], [t.loss], `loss (${backend})`);
        return g.dw.slice();
      },
      this.toString(),
    );
    if (typeof res === "string") check(res === "DISPOSED" && s.disposed, () => `${this}: ${res}`);
    else check(sameBits(...wasmPair(res)), () => `${this}: dw differs between wasm-simd and wasm`);
    invariants(r, i);
  }
  toString = () =>
    `gradients(slot ${this.slot}, batch ${this.batch}, objective ${this.objective}, ${this.reduction}${this.distill ? ", distill" : ""})`;
}

class Entropy extends OnSlot {
  constructor(
    slot: number,
    readonly batch: number,
    readonly seed: number,
    readonly kind: XKind,
  ) {
    super(slot);
  }
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const res = onAll(
      s,
      (c, backend) => {
        const x = makeX(r, s, c, backend, this.kind, this.batch, this.seed);
        const xs = x.slice();
        const p = paramsOf(c.m);
        const h = c.m.entropy(x, { reduction: "sum" });
        const e = ref.evaluate(p, xs, { reduction: "sum" });
        close([h], [e.entropy], [tolerancesWithFloor(p, xs, e, { reduction: "sum" }).entropy], `entropy (${backend})`);
        const rows = xs.length / s.inputs;
        check(h >= 0 && h <= rows * s.outputs * (1 + 1e-6), () => `entropy ${h} outside [0, ${rows * s.outputs}]`);
        return h;
      },
      this.toString(),
    );
    if (typeof res === "string") check(res === "DISPOSED" && s.disposed, () => `${this}: ${res}`);
    invariants(r, i);
  }
  toString = () => `entropy(slot ${this.slot}, ${this.kind}, batch ${this.batch})`;
}

class MakeOptimizer extends OnSlot {
  constructor(
    slot: number,
    readonly kind: "sgd" | "adam",
    readonly lr: number,
    readonly momentum: number,
    readonly frozenG: boolean,
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && !m.slots[this.slot % m.slots.length].disposed;
  run(m: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    for (const c of s.copies.values()) {
      const groups = this.frozenG ? { g: { frozen: true } } : undefined;
      c.opt =
        this.kind === "sgd"
          ? new SGD(c.m, { lr: this.lr, momentum: this.momentum, groups })
          : new Adam(c.m, { lr: this.lr / 10, groups });
    }
    s.opt = this.kind;
    s.settings = { kind: this.kind, lr: this.lr, momentum: this.momentum, frozenG: this.frozenG };
    m.slots[i].opt = this.kind;
    invariants(r, i);
  }
  toString = () =>
    `optimizer(slot ${this.slot}, ${this.kind}, lr ${this.lr}, momentum ${this.momentum}${this.frozenG ? ", g frozen" : ""})`;
}

class Step extends OnSlot {
  constructor(
    slot: number,
    readonly batch: number,
    readonly seed: number,
    readonly kind: XKind,
    readonly clip: boolean,
    readonly adapt?: { maxEntropy?: number; weighting?: "none" | "eata"; diversity?: number; prior?: number },
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && m.slots[this.slot % m.slots.length].opt !== null;
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const res = onAll(
      s,
      (c, backend) => {
        const x = makeX(r, s, c, backend, this.kind, this.batch, this.seed);
        const xs = x.slice();
        const p = paramsOf(c.m);
        const opt = defined(c.opt, "optimizer");
        const bufs = opt.stateDict().state;
        const lr = opt.lr;
        opt.maxGradNorm = this.clip ? CLIP : 0;
        let out: { loss: number };
        try {
          out = opt.step(x, this.adapt === undefined ? undefined : { adapt: this.adapt });
        } finally {
          opt.maxGradNorm = 0;
        }
        if (this.adapt === undefined) {
          const e = ref.evaluate(p, xs);
          const t = tolerancesWithFloor(p, xs, e);
          close([out.loss], [e.loss], [t.loss], `step loss (${backend})`);
          const settings = defined(s.settings, "optimizer settings");
          if (settings.kind === "sgd") {
            const sgdBufs = {
              w: (bufs.w as { momentumBuffer?: Float32Array | null }).momentumBuffer ?? null,
              g: (bufs.g as { momentumBuffer?: Float32Array | null }).momentumBuffer ?? null,
              b: (bufs.b as { momentumBuffer?: Float32Array | null }).momentumBuffer ?? null,
            };
            const now = { ...settings, lr }; // the lr may have been set since
            sgdStepMatches(p, c.m, e, t, now, sgdBufs, this.clip ? CLIP : 0, `${this} on ${backend}`);
          }
        } else check(Number.isFinite(out.loss), () => `adapt step loss ${out.loss} on ${backend}`);
        for (const k of ["w", "g", "b"] as const)
          check(c.m[k].every(Number.isFinite), () => `${k} not finite after a step on ${backend}`);
        return out.loss;
      },
      this.toString(),
    );
    if (typeof res === "string") check(res === "DISPOSED" && s.disposed, () => `${this}: ${res}`);
    invariants(r, i);
  }
  toString = () =>
    `step(slot ${this.slot}, ${this.kind}, batch ${this.batch}${this.clip ? ", clipped" : ""}${this.adapt ? `, adapt ${JSON.stringify(this.adapt)}` : ""})`;
}

/** A clipping threshold below most gradients' norms here, so clipping acts. */
const CLIP = 0.05;

/**
 * The parameters after one SGD step (torch.optim.SGD, no decay, dampening 0), from the float64
 * gradients: clipped by coef = min(max/(‖grad‖ + 1e-6), 1) over the updated parameters, then
 * the momentum buffer (as it was before the step) and θ ← θ − lr·buf. Tolerances: the
 * gradients' (t), carried through the clipping coefficient, plus float32 rounding of θ and buf.
 */
function sgdStepMatches(
  p: ref.Params,
  m: AnyModel,
  e: ref.Evaluation,
  t: { dw: ArrayLike<number>; db: ArrayLike<number> },
  o: OptSettings,
  bufs: Record<"w" | "g" | "b", Float32Array | null>,
  maxGradNorm: number,
  label: string,
): void {
  const updated = { w: true, g: !o.frozenG, b: true };
  let sq = 0,
    tsq = 0;
  for (const k of ["w", "g", "b"] as const) {
    if (!updated[k]) continue;
    const grad = k === "b" ? e.db : e.dw,
      tg = k === "b" ? t.db : t.dw;
    for (let i = 0; i < grad.length; i++) {
      sq += grad[i] * grad[i];
      tsq += tg[i] * tg[i];
    }
  }
  const norm = Math.sqrt(sq);
  const coef = maxGradNorm > 0 ? Math.min(maxGradNorm / (norm + 1e-6), 1) : 1;
  const dcoef = maxGradNorm > 0 ? coef * (Math.sqrt(tsq) / (norm + 1e-6) + 4 * EPS32) : 0;
  for (const k of ["w", "g", "b"] as const) {
    const now = m[k];
    if (!updated[k]) {
      check(
        now.every((v, i) => v === Math.fround(p[k][i])),
        () => `${label}: frozen ${k} moved`,
      );
      continue;
    }
    const grad = k === "b" ? e.db : e.dw,
      tg = k === "b" ? t.db : t.dw;
    const buf = bufs[k];
    const want = new Float64Array(grad.length),
      tol = new Float64Array(grad.length);
    for (let i = 0; i < grad.length; i++) {
      const u = coef * grad[i];
      const held = buf === null ? 0 : o.momentum * buf[i];
      const step = o.lr * (held + u);
      want[i] = p[k][i] - step;
      tol[i] =
        o.lr * (coef * tg[i] + Math.abs(grad[i]) * dcoef) +
        8 * EPS32 * (Math.abs(p[k][i]) + Math.abs(step) + o.lr * (Math.abs(held) + Math.abs(u))) +
        TINY32;
    }
    close(now, want, tol, `${label}: ${k} after the step`);
  }
}

/**
 * A step whose options' getter runs another step of the same optimizer first: the outer step
 * then runs on the parameters the inner one left, with its own options (issue 12, cause 3).
 */
class ReentrantStep extends OnSlot {
  constructor(
    slot: number,
    readonly batch: number,
    readonly seed: number,
    readonly where: "reduction" | "objective" | "x",
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && m.slots[this.slot % m.slots.length].opt !== null;
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const res = onAll(
      s,
      (c, backend) => {
        const opt = defined(c.opt, "optimizer");
        const x = data(this.seed, this.batch * s.inputs);
        const inner = data(this.seed + 1, 2 * s.inputs);
        const before = paramsOf(c.m);
        let after: ref.Params | null = null;
        const enter = () => {
          if (after !== null) return;
          opt.step(inner);
          after = paramsOf(c.m);
        };
        let out: { loss: number };
        if (this.where === "x") {
          // A subclass whose length getter steps: the package reads x by the intrinsic getters,
          // so this getter may never run; if it does, the steps are in sequence.
          class Sneaky extends Float32Array {
            override get length(): number {
              enter();
              return super.length;
            }
          }
          out = opt.step(new Sneaky(x), { reduction: "sum" });
        } else if (this.where === "reduction") {
          out = opt.step(x, {
            get reduction() {
              enter();
              return "sum" as const;
            },
          });
        } else {
          out = opt.step(x, {
            reduction: "sum",
            get objective() {
              enter();
              return { entropy: 1 };
            },
          });
        }
        if (this.where !== "x") check(after !== null, () => `${this}: the getter did not run`);
        const q: ref.Params = after ?? before;
        const e = ref.evaluate(q, x, { reduction: "sum" });
        close(
          [out.loss],
          [e.loss],
          [tolerancesWithFloor(q, x, e, { reduction: "sum" }).loss],
          `${this}: the outer step's loss, at the parameters the inner step left (${backend})`,
        );
        return out.loss;
      },
      this.toString(),
    );
    if (typeof res === "string") check(res === "DISPOSED" && s.disposed, () => `${this}: ${res}`);
    invariants(r, i);
  }
  toString = () => `re-entered step(slot ${this.slot}, getter on ${this.where}, batch ${this.batch})`;
}

class WriteParam extends OnSlot {
  constructor(
    slot: number,
    readonly which: "w" | "g" | "b",
    readonly at: number,
    readonly value: number,
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && !m.slots[this.slot % m.slots.length].disposed;
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    for (const c of s.copies.values()) {
      const v = c.m[this.which];
      v[this.at % v.length] = this.value;
      check(
        c.m[this.which][this.at % v.length] === Math.fround(this.value),
        () => "a write through a view did not stick",
      );
    }
    invariants(r, i);
  }
  toString = () => `write(slot ${this.slot}, ${this.which}[${this.at}] = ${this.value})`;
}

class CopySlot extends OnSlot {
  constructor(
    slot: number,
    readonly how: "clone" | "save",
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) =>
    m.slots.length > 0 && m.slots.length < MAX_SLOTS && !m.slots[this.slot % m.slots.length].disposed;
  run(m: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const copies = new Map<Backend, Copy>();
    for (const [backend, c] of s.copies) {
      const twin = this.how === "clone" ? c.m.clone() : Model.load(c.m.save(), { backend });
      for (const k of ["w", "g", "b"] as const) check(sameBits(twin[k], c.m[k]), () => `${this.how}: ${k} differs`);
      check(twin.backend === backend, () => `${this.how}: backend ${twin.backend}`);
      copies.set(backend, { m: twin, opt: null, held: null, snap: null });
    }
    r.slots.push({ inputs: s.inputs, outputs: s.outputs, copies, disposed: false, opt: null });
    m.slots.push({ inputs: s.inputs, outputs: s.outputs, disposed: false, opt: null });
    invariants(r, r.slots.length - 1);
  }
  toString = () => `${this.how}(slot ${this.slot})`;
}

class OptimizerState extends OnSlot {
  constructor(
    slot: number,
    readonly how: "dict" | "file" | "reset" | "lr",
    readonly lr: number,
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && m.slots[this.slot % m.slots.length].opt !== null;
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const res = onAll(
      s,
      (c) => {
        const opt = defined(c.opt, "optimizer");
        if (this.how === "dict") {
          const before = stateOf(opt);
          opt.loadStateDict(structuredClone(opt.stateDict()) as never);
          check(stateOf(opt) === before, () => "loadStateDict(stateDict()) changed the state");
        } else if (this.how === "file") {
          const before = stateOf(opt);
          opt.load(opt.save());
          check(stateOf(opt) === before, () => "load(save()) changed the state");
        } else if (this.how === "reset") {
          opt.reset();
        } else {
          opt.lr = this.lr; // may throw OPTION, leaving lr as it was
          check(opt.lr === this.lr, () => "lr did not take");
        }
        return opt.lr;
      },
      this.toString(),
    );
    const badLr = this.how === "lr" && !(this.lr >= 0 && Number.isFinite(this.lr));
    // The option is checked first, then the model.
    const want = badLr ? "OPTION" : s.disposed ? "DISPOSED" : null;
    check(
      (typeof res === "string" ? res : null) === want,
      () => `${this}: ${typeof res === "string" ? res : "no error"}, expected ${want}`,
    );
    invariants(r, i);
  }
  toString = () => `optimizer state(slot ${this.slot}, ${this.how}${this.how === "lr" ? ` ${this.lr}` : ""})`;
}

/** A call with a bad argument: its code, and nothing changed (onAll checks the state). */
class BadCall extends OnSlot {
  constructor(
    slot: number,
    readonly which: number,
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && !m.slots[this.slot % m.slots.length].disposed;
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    const I = s.inputs,
      O = s.outputs;
    const good = data(7, 2 * I);
    const cases: [string, (c: Copy) => unknown][] = [
      ["SHAPE", (c) => c.m.forward(new Float32Array(I === 1 ? 0 : I + 1))],
      ["OPTION", (c) => c.m.forward([1, 2] as unknown as Float32Array)],
      ["NON_FINITE", (c) => c.m.forward(Float32Array.from(good, (v, k) => (k === good.length - 1 ? NaN : v)))],
      ["OPTION", (c) => c.m.gradients(good, { reduction: "avg" as "mean" })],
      ["OPTION", (c) => c.m.gradients(good, { objective: { crossEntropy: 1 } })],
      ["SHAPE", (c) => c.m.gradients(good, { objective: { crossEntropy: 1 }, targets: new Float32Array(2 * O + 1) })],
      [
        "OPTION",
        (c) => c.m.gradients(good, { objective: { crossEntropy: 1 }, targets: new Float32Array(2 * O).fill(1.5) }),
      ],
      [
        "NON_FINITE",
        (c) => c.m.gradients(good, { objective: { crossEntropy: 1 }, targets: new Float32Array(2 * O).fill(Infinity) }),
      ],
      ["OPTION", (c) => c.m.entropy(good, { reduction: "mean", extra: 1 } as never)],
      ["SHAPE", (c) => c.m.input(0)],
      ["OPTION", (c) => (c.opt ?? new SGD(c.m, { lr: -1 })).step(good, { reduction: "none" })],
      [
        "NON_FINITE",
        (c) =>
          c.opt === null
            ? c.m.forward(new Float32Array(2 * I).fill(-Infinity))
            : c.opt.step(new Float32Array(2 * I).fill(NaN)),
      ],
      ["FORMAT", () => Model.load(new Uint8Array([1, 2, 3]))],
      ["OPTION", (c) => (c.opt ?? new SGD(c.m)).loadStateDict({ type: "nope" } as never)],
    ];
    const [want, fn] = cases[this.which % cases.length];
    const res = onAll(s, (c) => fn(c), this.toString());
    check(res === want, () => `${this}: ${typeof res === "string" ? res : "no error"}, expected ${want}`);
    invariants(r, i);
  }
  toString = () => `bad call ${this.which} (slot ${this.slot})`;
}

type KeptKind = "w" | "g" | "b" | "input" | "z" | "d" | "dw" | "db";
const MAX_KEPT = 24;

/** The user keeps a view of a model, on every backend (calls on the model where it takes one). */
class KeepView extends OnSlot {
  constructor(
    slot: number,
    readonly what: KeptKind,
    readonly batch: number,
    readonly seed: number,
  ) {
    super(slot);
  }
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && !m.slots[this.slot % m.slots.length].disposed;
  run(_: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    for (const [backend, c] of s.copies) {
      const x = data(this.seed, this.batch * s.inputs);
      let view: Float32Array;
      if (this.what === "input") view = c.m.input(this.batch);
      else if (this.what === "z" || this.what === "d") view = c.m.forward(x)[this.what];
      else if (this.what === "dw" || this.what === "db") view = c.m.gradients(x)[this.what];
      else view = c.m[this.what];
      if (this.what !== "w" && this.what !== "g" && this.what !== "b") c.held = null; // a call on the model
      r.kept.push({ slot: s, backend, view });
    }
    r.kept.splice(0, Math.max(0, r.kept.length - MAX_KEPT));
    invariants(r, i);
  }
  toString = () =>
    `keep ${this.what}(slot ${this.slot}${this.what === "w" || this.what === "g" || this.what === "b" ? "" : `, batch ${this.batch}`})`;
}

/**
 * Garbage through every kept view whose model is disposed: words pointing at a live model's w,
 * small whole numbers (rule kinds, flags), NaN bits and random words. Every live model's
 * parameters and held result views must stay as they were (a detached view takes nothing).
 */
class WriteKept implements fc.Command<Abstract, Real> {
  constructor(readonly seed: number) {}
  check = () => true;
  run(_: Abstract, r: Real): void {
    const rng = new ref.Rng(this.seed);
    for (const k of r.kept) {
      if (!k.slot.disposed || k.view.length === 0) continue;
      const live = r.slots.find((o) => !o.disposed);
      const target = live === undefined ? 0 : copyOn(live, k.backend).m.w.byteOffset;
      const u = new Uint32Array(k.view.buffer, k.view.byteOffset, k.view.length);
      for (let j = 0; j < u.length; j++) {
        const q = j % 4;
        u[j] = q === 0 ? target : q === 1 ? j % 3 : q === 2 ? 0x7fc00000 : Math.floor(rng.next() * 2 ** 32);
      }
    }
    invariants(r, r.slots.length); // no slot was worked on: all as they were
  }
  toString = () => `write kept views (seed ${this.seed})`;
}

class Dispose extends OnSlot {
  check = (m: Readonly<Abstract>) => m.slots.length > 0 && !m.slots[this.slot % m.slots.length].disposed;
  run(m: Abstract, r: Real): void {
    const i = this.idx(r),
      s = r.slots[i];
    for (const c of s.copies.values()) {
      c.m.dispose();
      c.m.dispose(); // twice is fine
      c.held = null;
    }
    s.disposed = true;
    m.slots[i].disposed = true;
    invariants(r, i);
  }
  toString = () => `dispose(slot ${this.slot})`;
}

const slot = fc.nat(5);
const batch = fc.oneof(
  { weight: 16, arbitrary: fc.integer({ min: 1, max: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 40, max: 300 }) },
);
const commands = [
  fc
    .tuple(dims, dims, fc.nat(1000), fc.constantFrom<"new" | "from">("new", "from"))
    .map(([i, o, s, h]) => new NewSlot(i, o, s, h)),
  fc.tuple(slot, forwardXKind, batch, fc.nat(1000)).map(([s, k, b, seed]) => new Forward(s, k, b, seed)),
  fc
    .tuple(
      slot,
      batch,
      fc.nat(1000),
      fc.nat(2),
      fc.constantFrom<"mean" | "sum" | "none">("mean", "sum", "none"),
      fc.boolean(),
    )
    .map(([s, b, seed, o, red, d]) => new Gradients(s, b, seed, o, red, d)),
  fc.tuple(slot, batch, fc.nat(1000), xKind).map(([s, b, seed, k]) => new Entropy(s, b, seed, k)),
  fc
    .tuple(
      slot,
      fc.constantFrom<"sgd" | "adam">("sgd", "adam"),
      fc.constantFrom(0.01, 0.1, 0.5),
      fc.constantFrom(0, 0.9),
      fc.boolean(),
    )
    .map(([s, k, lr, mu, f]) => new MakeOptimizer(s, k, lr, mu, f)),
  fc.tuple(slot, batch, fc.nat(1000), xKind, fc.boolean()).map(([s, b, seed, k, c]) => new Step(s, b, seed, k, c)),
  // Test-time adaptation steps: a filter on the sample entropy, EATA weights, the diversity term.
  fc
    .tuple(
      slot,
      batch,
      fc.nat(1000),
      xKind,
      fc.record({
        maxEntropy: fc.constantFrom(0.5, 1.5, 4),
        weighting: fc.constantFrom<"none" | "eata">("none", "eata"),
        diversity: fc.constantFrom(0, 0.5),
        prior: fc.constantFrom(0.1, 0.5),
      }),
    )
    .map(([s, b, seed, k, a]) => new Step(s, b, seed, k, false, a)),
  fc
    .tuple(slot, fc.constantFrom<"w" | "g" | "b">("w", "g", "b"), fc.nat(80), uniform(-2, 2))
    .map(([s, k, at, v]) => new WriteParam(s, k, at, v)),
  fc.tuple(slot, fc.constantFrom<"clone" | "save">("clone", "save")).map(([s, h]) => new CopySlot(s, h)),
  fc
    .tuple(
      slot,
      fc.constantFrom<"dict" | "file" | "reset" | "lr">("dict", "file", "reset", "lr"),
      fc.constantFrom(0.05, 0, -1, NaN),
    )
    .map(([s, h, lr]) => new OptimizerState(s, h, lr)),
  fc.tuple(slot, fc.nat(100)).map(([s, w]) => new BadCall(s, w)),
  fc
    .tuple(
      slot,
      fc.integer({ min: 1, max: 6 }),
      fc.nat(1000),
      fc.constantFrom("reduction", "objective", "x") as fc.Arbitrary<"reduction" | "objective" | "x">,
    )
    .map(([s, b, seed, w]) => new ReentrantStep(s, b, seed, w)),
  slot.map((s) => new Dispose(s)),
  fc
    .tuple(slot, fc.constantFrom<KeptKind>("w", "g", "b", "input", "z", "d", "dw", "db"), batch, fc.nat(1000))
    .map(([s, w, b, seed]) => new KeepView(s, w, b, seed)),
  fc.nat(1000).map((seed) => new WriteKept(seed)),
];

describe("random call sequences on random models (model-based)", () => {
  it(`every public call, in any order, on 1–3 models × 3 backends (${RUNS} sequences)`, () => {
    fc.assert(
      fc.property(
        fc.commands(commands, { maxCommands: 6 }),
        fc.tuple(dims, dims, fc.nat(1000)),
        (cmds, [i, o, seed]) => {
          const real: Real = { slots: [], kept: [] };
          const model: Abstract = { slots: [] };
          try {
            new NewSlot(i, o, seed, "new").run(model, real);
            fc.modelRun(() => ({ model, real }), cmds);
          } finally {
            for (const s of real.slots) for (const c of s.copies.values()) c.m.dispose();
          }
        },
      ),
      settings(10),
    );
  });
});

void EntrogradError;
