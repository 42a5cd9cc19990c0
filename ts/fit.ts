// fit(): the training loop PyTorch users write by hand, as one call. Epochs of seeded shuffled
// mini-batches, each one fused step of the optimizer; callbacks per batch and per epoch; an
// AbortSignal; and a yield to the event loop every few milliseconds so a page or a server
// stays responsive during long runs.

import { inCoreMemory } from "./core/registry.js";
import { fail } from "./errors.js";
import { isModel, type Model } from "./model.js";
import { isOptimizer, type Optimizer } from "./optim/optimizer.js";
import {
  booleanOption,
  isFloat32Array,
  lengthOf,
  bytesView,
  isTypedArray,
  lossSpec,
  newLossSpec,
  numberOption,
  plainView,
  read,
  readArray,
  readOptions,
  typedArrayName,
  type LossSpec,
  type Objective,
} from "./options.js";
import { splitmix32 } from "./rng.js";

export interface BatchInfo {
  /** 0-based epoch and batch within it. */
  epoch: number;
  batch: number;
  /** Rows in this batch. */
  size: number;
  /** Loss and entropy of this batch before its update, under the reduction. */
  loss: number;
  entropy: number;
}

export interface EpochInfo {
  epoch: number;
  /** Per-sample mean loss and entropy (bits) over the epoch, each batch's taken before its update. */
  loss: number;
  entropy: number;
  batches: number;
}

export interface FitHistory {
  /** Per epoch: the per-sample mean loss and entropy in bits (before each batch's update). */
  loss: number[];
  entropy: number[];
}

export interface FitOptions {
  /** Passes over the data (default 1). */
  epochs?: number;
  /** Rows per step (default 32); the last batch of an epoch may be smaller unless dropLast. */
  batchSize?: number;
  dropLast?: boolean;
  /** Shuffle the rows each epoch (default true), from `seed` (default 0): the same seed gives
   * the same order on every backend and runtime. */
  shuffle?: boolean;
  seed?: number;
  /** samples × outputs values in [0, 1], shuffled with x; needed by a crossEntropy objective. */
  targets?: Float32Array;
  objective?: Objective;
  /** "mean" (default) or "sum" over each batch. */
  reduction?: "mean" | "sum";
  /** Aborting rejects fit() with the signal's reason (an AbortError DOMException unless
   * abort() was given one); the model keeps every step taken before. */
  signal?: AbortSignal;
  /** Called after each step; returning (or resolving to) false stops training. */
  onBatch?: (info: BatchInfo) => unknown;
  /** Called after each epoch; returning (or resolving to) false stops training. */
  onEpoch?: (info: EpochInfo) => unknown;
  /** Milliseconds of work between yields to the event loop (default 10; 0 yields every batch). */
  yieldEvery?: number;
  /** Before the first step, set the model's input statistics to the mean and standard deviation
   * of each input over x (model.setInputStats), so the model standardises its inputs from then
   * on. Default false: the model's own statistics (or none) are used as they are. */
  standardize?: boolean;
  /** With standardize: the floor of the standard deviations (setInputStats' minStd). */
  minStd?: number;
  /** At the end (also when a callback stops training), record the source entropy and, with
   * targets, the prior (model.recordSource over x; the prior from the labelled rows only). Default true. */
  recordSource?: boolean;
  /**
   * Semi-supervised training (entropy regularisation, Grandvalet & Bengio 2004): per sample,
   * 1 (or true) for a labelled row, 0 (false) for an unlabelled one. The labelled rows take the
   * objective's crossEntropy term alone (against their targets; the unlabelled rows' targets are
   * never read), the unlabelled rows its entropy term alone, in the same batches (each step's
   * labelledRows). E.g. { objective: { crossEntropy: 1, entropy: 0.1 }, targets, labelled }.
   */
  labelled?: ArrayLike<number | boolean>;
}

const FIT_KEYS = [
  "epochs",
  "batchSize",
  "dropLast",
  "shuffle",
  "seed",
  "targets",
  "objective",
  "reduction",
  "signal",
  "onBatch",
  "onEpoch",
  "yieldEvery",
  "standardize",
  "minStd",
  "recordSource",
  "labelled",
] as const;

const now: () => number =
  typeof performance === "object" && typeof performance.now === "function" ? () => performance.now() : () => Date.now();

/** Lets the event loop run: scheduler.yield() where it exists (browsers), setImmediate (Node),
 * a MessageChannel round trip (browsers, Deno, workers), else setTimeout. */
export function yieldToEventLoop(): Promise<void> {
  const s = (globalThis as { scheduler?: { yield?: () => Promise<void> } }).scheduler;
  if (s !== undefined && typeof s.yield === "function") return s.yield();
  const si = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
  if (typeof si === "function") return new Promise((resolve) => void si(resolve));
  if (typeof MessageChannel === "function") {
    return new Promise((resolve) => {
      const c = new MessageChannel();
      c.port1.onmessage = () => {
        c.port1.close();
        resolve();
      };
      c.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function abortReason(signal: AbortSignal): unknown {
  const reason = read(signal, "reason", "fit: signal");
  if (reason !== undefined) return reason;
  return typeof DOMException === "function"
    ? new DOMException("fit() was aborted", "AbortError")
    : new Error("fit() was aborted");
}

/**
 * Trains `model` with `optimizer` (which must be the model's) on the rows of `x`
 * (samples × inputs). Resolves to the per-epoch history of loss and entropy; rejects with an
 * EntrogradError for bad options or a failing step (the model keeps the steps before it), or
 * with the signal's reason when aborted.
 */
export async function fit(
  model: Model,
  optimizer: Optimizer,
  x: Float32Array,
  options: FitOptions = {},
): Promise<FitHistory> {
  if (!isModel(model)) fail("OPTION", "fit: the first argument must be a Model");
  if (!isOptimizer(optimizer) || optimizer.model !== model) {
    fail("OPTION", "fit: the second argument must be an optimizer of this model");
  }
  // Every option read once, as plain data; x and targets as plain views (a subclass's getters
  // and methods are not called again while training).
  const o = readOptions(options, FIT_KEYS, "fit");
  if (!isFloat32Array(x)) fail("OPTION", "fit: x must be a Float32Array");
  x = plainView(x);
  const I = model.inputs,
    O = model.outputs;
  const samples = x.length / I;
  if (x.length === 0 || !Number.isInteger(samples)) {
    fail("SHAPE", `fit: x has ${lengthOf(x)} values, not a whole positive number of rows of ${I}`);
  }
  const wholeOption = (v: unknown, name: string, dflt: number, min: number): number => {
    const n = numberOption(v, name, dflt, min);
    if (!Number.isInteger(n)) fail("OPTION", `fit: ${name} must be a whole number, got ${n}`);
    return n;
  };
  const epochs = wholeOption(o.epochs, "epochs", 1, 1);
  const batchSize = Math.min(wholeOption(o.batchSize, "batchSize", 32, 1), samples);
  const dropLast = booleanOption(o.dropLast, "dropLast", false);
  const shuffle = booleanOption(o.shuffle, "shuffle", true);
  const seed = wholeOption(o.seed, "seed", 0, -Infinity);
  const yieldEvery = numberOption(o.yieldEvery, "yieldEvery", 10, 0);
  const spec: LossSpec = newLossSpec();
  lossSpec({ reduction: o.reduction, objective: o.objective, targets: o.targets }, "fit", spec);
  if (spec.reduction === "none") fail("OPTION", 'fit: reduction must be "mean" or "sum"');
  let targets = spec.targets === undefined ? undefined : plainView(spec.targets);
  if (targets !== undefined && targets.length !== samples * O) {
    fail("SHAPE", `fit: targets has ${targets.length} values, expected samples × outputs = ${samples * O}`);
  }
  const signal = o.signal as AbortSignal | undefined;
  if (signal !== undefined && (typeof signal !== "object" || signal === null)) {
    fail("OPTION", "fit: signal must be an AbortSignal");
  }
  const aborted = (): boolean => {
    if (signal === undefined) return false;
    const a = read(signal, "aborted", "fit: signal");
    if (typeof a !== "boolean") fail("OPTION", "fit: signal must be an AbortSignal");
    return a;
  };
  aborted(); // checks the signal now
  const callback = (v: unknown, name: string): ((info: never) => unknown) | undefined => {
    if (v !== undefined && typeof v !== "function") fail("OPTION", `fit: ${name} must be a function`);
    return v as ((info: never) => unknown) | undefined;
  };
  const onBatch = callback(o.onBatch, "onBatch") as ((i: BatchInfo) => unknown) | undefined;
  const onEpoch = callback(o.onEpoch, "onEpoch") as ((i: EpochInfo) => unknown) | undefined;
  const standardize = booleanOption(o.standardize, "standardize", false);
  if (o.minStd !== undefined && !standardize) fail("OPTION", "fit: minStd needs standardize: true");
  const minStd = o.minStd === undefined ? undefined : numberOption(o.minStd, "minStd", 0, 0);
  const record = booleanOption(o.recordSource, "recordSource", true);
  const labelled = o.labelled === undefined ? null : labelledMask(o.labelled, samples);
  if (labelled !== null && spec.crossEntropyWeight === 0)
    fail("OPTION", "fit: labelled rows need an objective with a crossEntropy term (and targets)");
  if (aborted()) throw abortReason(signal as AbortSignal);

  // Rows are gathered into the model's staging area (no further copy into the core). If x or
  // targets live in a core's memory (this model's staging, another model's, any model's
  // results), copy them out first: growing that memory — here, or by other work while fit
  // yields — detaches such views.
  if (inCoreMemory(x)) x = x.slice();
  if (targets !== undefined && inCoreMemory(targets)) targets = targets.slice();
  let staging = model.input(batchSize);
  if (x.buffer === staging.buffer) x = x.slice();
  if (targets !== undefined && targets.buffer === staging.buffer) targets = targets.slice();
  const source = record ? x : null;
  const sourceTargets = targets;
  if (standardize) {
    const { mean, std } = columnStats(x, I);
    model.setInputStats(mean, std, minStd === undefined ? undefined : { minStd });
  }
  const yb = targets === undefined ? undefined : new Float32Array(batchSize * O);
  // The parsed objective (the user's object is not read again each step).
  const stepOptions = {
    reduction: spec.reduction as "mean" | "sum",
    objective: { entropy: spec.entropyWeight, crossEntropy: spec.crossEntropyWeight },
    targets: undefined as Float32Array | undefined,
    labelledRows: undefined as number | undefined,
  };
  // With a labelled mask, a batch's labelled rows go first (the order within a batch does not
  // change its gradient).
  const rows = new Uint32Array(batchSize);
  const order = new Uint32Array(samples);
  const rand = splitmix32(seed);
  const history: FitHistory = { loss: [], entropy: [] };
  const batches = dropLast ? Math.floor(samples / batchSize) : Math.ceil(samples / batchSize);
  let last = now();

  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = 0; i < samples; i++) order[i] = i;
    if (shuffle) {
      // Fisher–Yates from the seeded generator: the same order on every backend.
      for (let i = samples - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    let lossSum = 0,
      entropySum = 0,
      seen = 0;
    for (let b = 0; b < batches; b++) {
      if (aborted()) throw abortReason(signal as AbortSignal);
      const start = b * batchSize;
      const size = Math.min(batchSize, samples - start);
      staging = model.input(size);
      let labelledRows = size;
      if (labelled === null) rows.set(order.subarray(start, start + size));
      else {
        labelledRows = 0;
        for (let k = 0; k < size; k++) if (labelled[order[start + k]] === 1) rows[labelledRows++] = order[start + k];
        let at = labelledRows;
        for (let k = 0; k < size; k++) if (labelled[order[start + k]] !== 1) rows[at++] = order[start + k];
        stepOptions.labelledRows = labelledRows;
      }
      for (let k = 0; k < size; k++) {
        const r = rows[k];
        staging.set(x.subarray(r * I, r * I + I), k * I);
      }
      if (yb !== undefined) {
        for (let k = 0; k < labelledRows; k++) {
          const r = rows[k];
          yb.set((targets as Float32Array).subarray(r * O, r * O + O), k * O);
        }
        stepOptions.targets = labelledRows === batchSize ? yb : yb.subarray(0, labelledRows * O);
      }
      const r = optimizer.step(staging, stepOptions);
      const perSample = spec.reduction === "mean" ? size : 1;
      lossSum += r.loss * perSample;
      entropySum += r.entropy * perSample;
      seen += size;
      if (
        onBatch !== undefined &&
        (await onBatch({ epoch, batch: b, size, loss: r.loss, entropy: r.entropy })) === false
      ) {
        history.loss.push(lossSum / seen);
        history.entropy.push(entropySum / seen);
        if (source !== null) recordSource(model, source, sourceTargets, labelled);
        return history;
      }
      if (now() - last >= yieldEvery) {
        await yieldToEventLoop();
        last = now();
      }
    }
    const info: EpochInfo = { epoch, loss: lossSum / seen, entropy: entropySum / seen, batches };
    history.loss.push(info.loss);
    history.entropy.push(info.entropy);
    if (onEpoch !== undefined && (await onEpoch(info)) === false) break;
  }
  if (source !== null) recordSource(model, source, sourceTargets, labelled);
  return history;
}

/** The source entropy over every row; the prior from the targets of the labelled rows. */
function recordSource(
  model: Model,
  x: Float32Array,
  targets: Float32Array | undefined,
  labelled: Uint8Array | null,
): void {
  model.recordSource(x);
  if (targets === undefined) return;
  const O = model.outputs;
  const sum = new Float64Array(O);
  let n = 0;
  for (let r = 0; r < targets.length / O; r++) {
    if (labelled !== null && labelled[r] !== 1) continue;
    n++;
    for (let o = 0; o < O; o++) sum[o] += targets[r * O + o];
  }
  if (n > 0) model.setPrior(Array.from(sum, (v) => v / n));
}

/** A per-sample labelled mask (1/true labelled, 0/false not) as a Uint8Array of 0 and 1. */
function labelledMask(v: unknown, samples: number): Uint8Array {
  let items: ArrayLike<unknown>;
  if (isTypedArray(v)) {
    // A Uint8Array (its bytes are its values); other typed arrays are not masks.
    if (typedArrayName(v) !== "Uint8Array")
      fail("OPTION", "fit: labelled must be a Uint8Array or an array of booleans");
    items = bytesView(v) as Uint8Array;
  } else items = readArray(v, "fit: labelled", samples);
  if (items.length !== samples)
    fail("SHAPE", `fit: labelled has ${items.length} values, expected samples = ${samples}`);
  const mask = new Uint8Array(samples);
  for (let i = 0; i < samples; i++) {
    const b = items[i];
    if (b === 1 || b === true) mask[i] = 1;
    else if (!(b === 0 || b === false)) fail("OPTION", `fit: labelled[${i}] is ${String(b)}, not 0, 1, true or false`);
  }
  return mask;
}

/** Per column of x (rows × width): the mean and the (population) standard deviation, in float64. */
export function columnStats(x: Float32Array, width: number): { mean: Float64Array; std: Float64Array } {
  const rows = x.length / width;
  const mean = new Float64Array(width),
    std = new Float64Array(width);
  for (let at = 0; at < x.length; at += width) for (let i = 0; i < width; i++) mean[i] += x[at + i];
  for (let i = 0; i < width; i++) mean[i] /= rows;
  for (let at = 0; at < x.length; at += width)
    for (let i = 0; i < width; i++) {
      const d = x[at + i] - mean[i];
      std[i] += d * d;
    }
  for (let i = 0; i < width; i++) std[i] = Math.sqrt(std[i] / rows);
  return { mean, std };
}
