// `entrograd demo`: test-time adaptation on the optical digits.
//
// Per seed: split the digits (2/3 train, 1/3 test), standardise with the clean training
// statistics, train W and b with cross-entropy on one-hot targets (10 sigmoid outputs, the
// predicted class is argmax D). Then, for the clean test split and each shift of it, adapt G
// alone on the unlabelled test images (W and b frozen) with plain entropy minimisation and
// with each anti-collapse tool, and measure accuracy and mean entropy on that test split.

import { Adapter, Model, SGD, type AdaptOptions, type BackendName } from "../index.js";
import {
  CLASSES,
  PIXELS,
  SHIFTS,
  fitStandardizer,
  loadDigits,
  oneHot,
  shift,
  split,
  standardize,
  type Images,
  type ShiftName,
  type ShiftStrength,
} from "./digits.js";
import type { Progress } from "./progress.js";
import { Random } from "./random.js";

export type Condition = "clean" | ShiftName;
export const CONDITIONS: readonly Condition[] = ["clean", ...SHIFTS];

export interface Method {
  name: string;
  /** What Adapter gets. */
  adapt: AdaptOptions & { resetBelow?: number };
  /** Weight decay on G (the anchor to W). */
  anchor: number;
}

/** The settings of one demo run; `settings(quick)` gives the defaults. */
export interface DemoSettings {
  seeds: number[];
  testFraction: number;
  /** Standard deviations below this (pixel units) are raised to it when standardising. */
  minStd: number;
  shift: ShiftStrength;
  train: { epochs: number; batch: number; lr: number; momentum: number; weightDecay: number };
  adapt: { epochs: number; batch: number; lr: number; momentum: number };
  /** E0 in bits, λ, the anchor's decay and the reset threshold of the anti-collapse methods. */
  maxEntropy: number;
  diversity: number;
  anchor: number;
  resetBelow: number;
  backend: BackendName | "auto";
  data?: string;
  /** Record accuracy and entropy after every adaptation step on this condition, first seed
   * (for --plot); null: none. */
  trace: Condition | null;
}

export function settings(quick: boolean): DemoSettings {
  return {
    seeds: quick ? [1, 2] : [1, 2, 3, 4, 5],
    testFraction: 1 / 3,
    minStd: 1,
    shift: { noise: 2, contrast: 0.5 },
    train: { epochs: quick ? 8 : 30, batch: 32, lr: 0.05, momentum: 0.9, weightDecay: 0 },
    adapt: { epochs: 3, batch: 64, lr: 0.05, momentum: 0.9 },
    maxEntropy: 1,
    diversity: 1,
    anchor: 0.05,
    resetBelow: 0.1,
    backend: "auto",
    trace: null,
  };
}

export function methods(s: DemoSettings): Method[] {
  return [
    { name: "entropy (TENT)", adapt: {}, anchor: 0 },
    { name: "+ filter (E0)", adapt: { maxEntropy: s.maxEntropy }, anchor: 0 },
    { name: "+ EATA weights", adapt: { maxEntropy: s.maxEntropy, weighting: "eata" }, anchor: 0 },
    { name: "+ diversity", adapt: { diversity: s.diversity }, anchor: 0 },
    { name: "+ anchor (decay on G)", adapt: {}, anchor: s.anchor },
    { name: "+ reset", adapt: { resetBelow: s.resetBelow }, anchor: 0 },
    {
      name: "all of them",
      adapt: { maxEntropy: s.maxEntropy, weighting: "eata", diversity: s.diversity, resetBelow: s.resetBelow },
      anchor: s.anchor,
    },
  ];
}

export interface Score {
  /** Fraction of test images whose argmax D is the label. */
  accuracy: number;
  /** Mean per-sample entropy, bits (sum over the 10 outputs). */
  entropy: number;
}

export interface Trace {
  method: string;
  accuracy: number[];
  entropy: number[];
}

export interface DemoResult {
  settings: DemoSettings;
  backend: BackendName;
  conditions: readonly Condition[];
  /** Row names: "no adaptation", then the methods. */
  rows: string[];
  /** scores[row][condition][seed] */
  scores: Record<string, Record<string, Score[]>>;
  /** Per-step curves on settings.trace, first seed. */
  traces: Trace[];
  seconds: number;
}

export function evaluate(m: Model, x: Float32Array, labels: Uint8Array): Score {
  const { d } = m.forward(x);
  let right = 0;
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 1; c < CLASSES; c++) if (d[r * CLASSES + c] > d[r * CLASSES + best]) best = c;
    if (best === labels[r]) right++;
  }
  return { accuracy: right / labels.length, entropy: m.entropy(x) };
}

/** Mini-batches of rows in a seeded order; the last one may be smaller. */
function* batches(n: number, size: number, rng: Random): Generator<Uint32Array> {
  const order = rng.permutation(n);
  for (let at = 0; at < n; at += size) yield order.subarray(at, Math.min(n, at + size));
}

function gather(x: Float32Array, width: number, rows: Uint32Array, into: Float32Array): Float32Array {
  const out = into.subarray(0, rows.length * width);
  for (let k = 0; k < rows.length; k++) out.set(x.subarray(rows[k] * width, (rows[k] + 1) * width), k * width);
  return out;
}

/** Trains W and b with cross-entropy; G stays 0. */
export function trainClassifier(
  train: Images,
  xs: Float32Array,
  s: DemoSettings,
  seed: number,
  tick: () => void,
): Model {
  const m = new Model({ inputs: PIXELS, outputs: CLASSES, seed, backend: s.backend });
  const opt = new SGD(m, {
    lr: s.train.lr,
    momentum: s.train.momentum,
    weightDecay: s.train.weightDecay,
    groups: { g: { frozen: true } },
  });
  const targets = oneHot(train.labels);
  const rng = new Random(seed * 7919 + 1);
  const xb = new Float32Array(s.train.batch * PIXELS),
    yb = new Float32Array(s.train.batch * CLASSES);
  for (let e = 0; e < s.train.epochs; e++) {
    for (const rows of batches(train.n, s.train.batch, rng)) {
      opt.step(gather(xs, PIXELS, rows, xb), {
        objective: { crossEntropy: 1 },
        targets: gather(targets, CLASSES, rows, yb),
      });
    }
    tick();
  }
  return m;
}

/** Adapts a copy of `source` on unlabelled x; returns the score after adaptation. */
export function adaptCopy(
  source: Model,
  x: Float32Array,
  labels: Uint8Array,
  method: Method,
  s: DemoSettings,
  seed: number,
  trace: Trace | null,
): Score {
  const m = source.clone();
  try {
    const opt = new SGD(m, {
      lr: s.adapt.lr,
      momentum: s.adapt.momentum,
      groups: { w: { frozen: true }, b: { frozen: true }, g: { weightDecay: method.anchor } },
    });
    const tta = new Adapter(m, opt, method.adapt);
    const rng = new Random(seed * 104729 + 17);
    const n = labels.length;
    const xb = new Float32Array(s.adapt.batch * PIXELS);
    if (trace !== null) {
      const e = evaluate(m, x, labels);
      trace.accuracy.push(e.accuracy);
      trace.entropy.push(e.entropy);
    }
    for (let e = 0; e < s.adapt.epochs; e++) {
      for (const rows of batches(n, s.adapt.batch, rng)) {
        tta.step(gather(x, PIXELS, rows, xb));
        if (trace !== null) {
          const sc = evaluate(m, x, labels);
          trace.accuracy.push(sc.accuracy);
          trace.entropy.push(sc.entropy);
        }
      }
    }
    return evaluate(m, x, labels);
  } finally {
    m.dispose();
  }
}

/** Units of work of a run, for the progress bar. */
export function workUnits(s: DemoSettings): number {
  return s.seeds.length * (s.train.epochs + CONDITIONS.length * methods(s).length);
}

export function runDemo(s: DemoSettings, progress: Progress): DemoResult {
  const t0 = performance.now();
  const digits = loadDigits(s.data);
  const ms = methods(s);
  const rows = ["no adaptation", ...ms.map((m) => m.name)];
  const scores: DemoResult["scores"] = {};
  for (const r of rows) scores[r] = Object.fromEntries(CONDITIONS.map((c) => [c, [] as Score[]]));
  const traces: Trace[] = [];
  let backend: BackendName = "js";
  progress.start(workUnits(s));
  for (const [si, seed] of s.seeds.entries()) {
    const { train, test } = split(digits, seed, s.testFraction);
    const std = fitStandardizer(train.x, PIXELS, s.minStd);
    progress.status(`seed ${seed}: training W with cross-entropy`);
    const model = trainClassifier(train, standardize(train.x, std), s, seed, () => progress.tick());
    backend = model.backend;
    try {
      for (const [ci, condition] of CONDITIONS.entries()) {
        const images = condition === "clean" ? test : shift(test, condition, seed * 1000 + ci, s.shift);
        const x = standardize(images.x, std);
        scores["no adaptation"][condition].push(evaluate(model, x, images.labels));
        for (const method of ms) {
          progress.status(`seed ${seed}: ${condition}, ${method.name}`);
          const trace = si === 0 && condition === s.trace ? { method: method.name, accuracy: [], entropy: [] } : null;
          scores[method.name][condition].push(adaptCopy(model, x, images.labels, method, s, seed, trace));
          if (trace !== null) traces.push(trace);
          progress.tick();
        }
      }
    } finally {
      model.dispose();
    }
  }
  progress.stop();
  return {
    settings: s,
    backend,
    conditions: CONDITIONS,
    rows,
    scores,
    traces,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(v: number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const varc = v.length > 1 ? v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) : 0;
  return { mean, std: Math.sqrt(varc) };
}

function table(title: string, r: DemoResult, pick: (s: Score) => number, digits: number): string {
  const head = ["", ...r.conditions];
  const body = r.rows.map((row) => [
    row,
    ...r.conditions.map((c) => {
      const { mean, std } = meanStd(r.scores[row][c].map(pick));
      return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
    }),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [title, "", line(head), rule, ...body.map(line)].join("\n");
}

/** The two Markdown tables (accuracy in %, mean entropy in bits) and how they were made. */
export function formatResult(r: DemoResult): string {
  const s = r.settings;
  return [
    table(
      `Accuracy (%) on the test split, mean ± standard deviation over ${s.seeds.length} seed${s.seeds.length === 1 ? "" : "s"}`,
      r,
      (v) => 100 * v.accuracy,
      1,
    ),
    "",
    table("Mean entropy (bits per image, summed over the 10 outputs)", r, (v) => v.entropy, 2),
    "",
    `Seeds ${s.seeds.join(", ")}; backend ${r.backend}; W trained ${s.train.epochs} epochs (cross-entropy, SGD lr ${s.train.lr}, ` +
      `momentum ${s.train.momentum}, batch ${s.train.batch}); G adapted ${s.adapt.epochs} passes over the unlabelled ` +
      `test split (SGD lr ${s.adapt.lr}, momentum ${s.adapt.momentum}, batch ${s.adapt.batch}; W and b frozen); ` +
      `E0 = ${s.maxEntropy} bit${s.maxEntropy === 1 ? "" : "s"}, λ = ${s.diversity}, anchor decay ${s.anchor}, reset below ${s.resetBelow} bits. ` +
      `${r.seconds.toFixed(1)} s.`,
  ].join("\n");
}
