// `entrograd demo`: test-time adaptation on the optical digits, the recommended setting against
// doing nothing (and against plain entropy minimisation). `entrograd demo --study` runs the
// study that chose the setting (study.ts).
//
// Per seed: split the digits (2/3 train, 1/3 test), train W and b with fit() (cross-entropy on
// one-hot targets, inputs standardised with the training statistics, which the model records
// with the training label frequency and its source entropy). Then, for the clean test split and
// each shift of it, adapt a copy of the model on the unlabelled test images and measure accuracy
// and mean entropy on that test split.

import { Adapter, fit, Model, SGD, type AdapterOptions, type BackendName, type EntropyThreshold } from "../index.js";
import {
  CLASSES,
  PIXELS,
  SHIFTS,
  labelShift,
  loadDigits,
  oneHot,
  shift,
  split,
  type Images,
  type ShiftName,
  type ShiftStrength,
} from "./digits.js";
import type { Progress } from "./progress.js";
import { Random } from "./random.js";

export type Condition = "clean" | ShiftName | "label";
/** The test conditions: the clean split, the four covariate shifts, and a label shift. */
export const CONDITIONS: readonly Condition[] = ["clean", ...SHIFTS, "label"];
export const SHIFTED: readonly Condition[] = CONDITIONS.filter((c) => c !== "clean");

/** What one adaptation run does: the Adapter's options and the optimizer on G. */
export interface Setting {
  /** Re-estimate the input statistics on the test stream (Adapter inputStats). Default "keep". */
  inputStats?: "keep" | "accumulate" | "ema" | "batch";
  /** Balanced statistics (Adapter balanceStats); default: the Adapter's (balanced, as the
   * demo's models have a prior). */
  balanceStats?: boolean;
  /** SGD learning rate on G (momentum from the settings); 0: no gradient step. */
  lr: number;
  diversity?: number;
  marginalMomentum?: number;
  maxEntropy?: EntropyThreshold;
  weighting?: "eata";
  resetBelow?: EntropyThreshold;
  /** Weight decay on G: the anchor to W. */
  anchor?: number;
}

export interface Method {
  name: string;
  setting: Setting;
}

/**
 * The recommended setting, as `entrograd demo --study` chose it on the selection seeds (see
 * docs/test-time-adaptation.md): the inputs re-standardised with the test stream's statistics
 * (a moving average, balanced by the model's prior), and G adapted by entropy minimisation with
 * the prior-matched diversity term on a running marginal.
 */
export const RECOMMENDED: Method = {
  name: "recommended",
  setting: { inputStats: "ema", lr: 0.1, diversity: 30, marginalMomentum: 0.9 },
};

/** Plain entropy minimisation of G (TENT's objective on this layer), for contrast: its learning
 * rate as the study chose it on the selection seeds. */
export const PLAIN_ENTROPY: Method = { name: "entropy minimisation (TENT)", setting: { lr: 0.005 } };

/** The settings of one run; `settings(quick)` gives the defaults. */
export interface DemoSettings {
  /** Seeds whose results are reported. */
  seeds: number[];
  /** Seeds the study chooses hyper-parameters on (never reported as results). */
  selectionSeeds: number[];
  testFraction: number;
  /** The floor of the standard deviations the model standardises with (pixel levels). */
  minStd: number;
  shift: ShiftStrength;
  /** Label shift: the most frequent class is this many times as common as the rarest. */
  labelShiftRatio: number;
  train: { epochs: number; batch: number; lr: number; momentum: number };
  adapt: { epochs: number; batch: number; momentum: number };
  backend: BackendName | "auto";
  data?: string;
  /** Record accuracy and entropy after every adaptation step on this condition, first seed
   * (for --plot); null: none. */
  trace: Condition | null;
}

export function settings(quick: boolean): DemoSettings {
  return {
    seeds: quick ? [4, 5] : [4, 5, 6, 7, 8],
    selectionSeeds: [1, 2, 3],
    testFraction: 1 / 3,
    minStd: 1,
    shift: { noise: 2, contrast: 0.5 },
    labelShiftRatio: 10,
    train: { epochs: quick ? 10 : 30, batch: 32, lr: 0.05, momentum: 0.9 },
    adapt: { epochs: 3, batch: 64, momentum: 0.9 },
    backend: "auto",
    trace: null,
  };
}

export interface Score {
  /** Fraction of test images whose argmax D is the label. */
  accuracy: number;
  /** Mean per-sample entropy, bits (sum over the 10 outputs). */
  entropy: number;
  /** Σₒ KL(πₒ ‖ p̄ₒ) in bits between the training label frequency and the mean prediction:
   * how far the predicted class mix drifted from the training one (no labels needed). */
  priorGap: number;
}

export interface Trace {
  method: string;
  accuracy: number[];
  entropy: number[];
}

/** One seed's trained model and test conditions. */
export interface Prepared {
  seed: number;
  model: Model;
  conditions: Map<Condition, Images>;
}

/** Binary KL divergence KL(Bern(p) ‖ Bern(q)) in bits (q kept inside (0, 1)). */
export function bernoulliKl(p: number, q: number): number {
  const qc = Math.min(Math.max(q, 1e-12), 1 - 1e-12);
  const t = (a: number, b: number) => (a > 0 ? a * Math.log2(a / b) : 0);
  return t(p, qc) + t(1 - p, 1 - qc);
}

export function evaluate(m: Model, images: Images): Score {
  const { d } = m.forward(images.x);
  const labels = images.labels;
  let right = 0;
  const mean = new Float64Array(CLASSES);
  for (let r = 0; r < labels.length; r++) {
    let best = 0;
    for (let c = 0; c < CLASSES; c++) {
      mean[c] += d[r * CLASSES + c] / labels.length;
      if (d[r * CLASSES + c] > d[r * CLASSES + best]) best = c;
    }
    if (best === labels[r]) right++;
  }
  const prior = m.prior;
  let priorGap = 0;
  if (prior !== null) for (let c = 0; c < CLASSES; c++) priorGap += bernoulliKl(prior[c], mean[c]);
  return { accuracy: right / labels.length, entropy: m.entropy(images.x), priorGap };
}

/** Mini-batches of rows in a seeded order; the last one may be smaller. */
export function* batches(n: number, size: number, rng: Random): Generator<Uint32Array> {
  const order = rng.permutation(n);
  for (let at = 0; at < n; at += size) yield order.subarray(at, Math.min(n, at + size));
}

export function gather(x: Float32Array, width: number, rows: Uint32Array, into: Float32Array): Float32Array {
  const out = into.subarray(0, rows.length * width);
  for (let k = 0; k < rows.length; k++) out.set(x.subarray(rows[k] * width, (rows[k] + 1) * width), k * width);
  return out;
}

/** Trains W and b with cross-entropy by fit(), standardising the inputs; G stays 0. With
 * `labelled`, only those rows have targets (semi-supervised, objective from the caller). */
export async function trainClassifier(
  train: Images,
  s: DemoSettings,
  seed: number,
  options: { labelled?: Uint8Array; entropy?: number } = {},
): Promise<Model> {
  const m = new Model({ inputs: PIXELS, outputs: CLASSES, seed, backend: s.backend });
  const opt = new SGD(m, { lr: s.train.lr, momentum: s.train.momentum, groups: { g: { frozen: true } } });
  const semi = options.labelled !== undefined;
  await fit(m, opt, train.x, {
    epochs: s.train.epochs,
    batchSize: s.train.batch,
    seed: seed * 7919 + 1,
    targets: oneHot(train.labels),
    objective: semi ? { crossEntropy: 1, entropy: options.entropy ?? 0 } : { crossEntropy: 1 },
    ...(semi ? { labelled: options.labelled } : {}),
    standardize: true,
    minStd: s.minStd,
    yieldEvery: 1000,
  });
  return m;
}

/** Splits, trains and shifts for one seed. */
export async function prepare(digits: Images, s: DemoSettings, seed: number): Promise<Prepared> {
  const { train, test } = split(digits, seed, s.testFraction);
  const model = await trainClassifier(train, s, seed);
  const conditions = new Map<Condition, Images>();
  for (const [ci, c] of CONDITIONS.entries()) {
    const images =
      c === "clean"
        ? test
        : c === "label"
          ? labelShift(test, seed * 1000 + ci, s.labelShiftRatio)
          : shift(test, c, seed * 1000 + ci, s.shift);
    conditions.set(c, images);
  }
  return { seed, model, conditions };
}

/** The Adapter's options for a setting. */
export function adapterOptions(setting: Setting): AdapterOptions {
  const o: AdapterOptions = {};
  if (setting.inputStats !== undefined && setting.inputStats !== "keep") o.inputStats = setting.inputStats;
  if (setting.balanceStats !== undefined) o.balanceStats = setting.balanceStats;
  if (setting.diversity !== undefined) o.diversity = setting.diversity;
  if (setting.marginalMomentum !== undefined) o.marginalMomentum = setting.marginalMomentum;
  if (setting.maxEntropy !== undefined) o.maxEntropy = setting.maxEntropy;
  if (setting.weighting !== undefined) o.weighting = setting.weighting;
  if (setting.resetBelow !== undefined) o.resetBelow = setting.resetBelow;
  return o;
}

/** Adapts a copy of `source` on the unlabelled images; returns the score after adaptation. */
export function adaptCopy(
  source: Model,
  images: Images,
  setting: Setting,
  s: DemoSettings,
  seed: number,
  trace: Trace | null,
): Score {
  const m = source.clone();
  try {
    const opt =
      setting.lr > 0
        ? new SGD(m, {
            lr: setting.lr,
            momentum: s.adapt.momentum,
            groups: { w: { frozen: true }, b: { frozen: true }, g: { weightDecay: setting.anchor ?? 0 } },
          })
        : null;
    const tta = new Adapter(m, opt, adapterOptions(setting));
    const rng = new Random(seed * 104729 + 17);
    const xb = new Float32Array(s.adapt.batch * PIXELS);
    const record = () => {
      if (trace === null) return;
      const e = evaluate(m, images);
      trace.accuracy.push(e.accuracy);
      trace.entropy.push(e.entropy);
    };
    record();
    for (let e = 0; e < s.adapt.epochs; e++) {
      for (const rows of batches(images.n, s.adapt.batch, rng)) {
        tta.step(gather(images.x, PIXELS, rows, xb));
        record();
      }
    }
    return evaluate(m, images);
  } finally {
    m.dispose();
  }
}

/** Scores of one method: per condition, one per seed. */
export type Scores = Record<Condition, Score[]>;

export function emptyScores(): Scores {
  return Object.fromEntries(CONDITIONS.map((c) => [c, [] as Score[]])) as unknown as Scores;
}

/** Runs `method` (null: no adaptation) on every condition of a prepared seed. */
export function runMethod(p: Prepared, method: Method | null, s: DemoSettings, into: Scores, traces?: Trace[]): void {
  for (const c of CONDITIONS) {
    const images = p.conditions.get(c) as Images;
    if (method === null) {
      into[c].push(evaluate(p.model, images));
      continue;
    }
    const trace = traces !== undefined && c === s.trace ? { method: method.name, accuracy: [], entropy: [] } : null;
    into[c].push(adaptCopy(p.model, images, method.setting, s, p.seed, trace));
    if (trace !== null) traces?.push(trace);
  }
}

/** Mean and sample standard deviation (0 for one value). */
export function meanStd(v: number[]): { mean: number; std: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const varc = v.length > 1 ? v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) : 0;
  return { mean, std: Math.sqrt(varc) };
}

/** Accuracy in % averaged over seeds, per condition. */
export function meanAccuracy(sc: Scores): Record<Condition, number> {
  return Object.fromEntries(CONDITIONS.map((c) => [c, meanStd(sc[c].map((v) => 100 * v.accuracy)).mean])) as Record<
    Condition,
    number
  >;
}

/** Against no adaptation (points, means over seeds): the mean gain over the shifts, the worst
 * shift's gain and which, and the change on clean data. */
export interface Summary {
  meanGain: number;
  worstGain: number;
  worstShift: Condition;
  clean: number;
}

export function summarize(method: Scores, none: Scores): Summary {
  const a = meanAccuracy(method),
    b = meanAccuracy(none);
  let worst: Condition = SHIFTED[0];
  let sum = 0;
  for (const c of SHIFTED) {
    sum += a[c] - b[c];
    if (a[c] - b[c] < a[worst] - b[worst]) worst = c;
  }
  return {
    meanGain: sum / SHIFTED.length,
    worstGain: a[worst] - b[worst],
    worstShift: worst,
    clean: a.clean - b.clean,
  };
}

export interface DemoResult {
  settings: DemoSettings;
  backend: BackendName;
  conditions: readonly Condition[];
  /** Row names: "no adaptation", the recommended setting, plain entropy minimisation. */
  rows: string[];
  /** scores[row][condition][seed] */
  scores: Record<string, Scores>;
  /** Per-step curves on settings.trace, first seed. */
  traces: Trace[];
  seconds: number;
}

/** Units of work of a run, for the progress bar. */
export function workUnits(s: DemoSettings): number {
  return s.seeds.length * 3;
}

export async function runDemo(s: DemoSettings, progress: Progress): Promise<DemoResult> {
  const t0 = performance.now();
  const digits = loadDigits(s.data);
  const methods = [RECOMMENDED, PLAIN_ENTROPY];
  const rows = ["no adaptation", ...methods.map((m) => m.name)];
  const scores: Record<string, Scores> = Object.fromEntries(rows.map((r) => [r, emptyScores()]));
  const traces: Trace[] = [];
  let backend: BackendName = "js";
  progress.start(workUnits(s));
  for (const [si, seed] of s.seeds.entries()) {
    progress.status(`seed ${seed}: training W with cross-entropy`);
    const p = await prepare(digits, s, seed);
    backend = p.model.backend;
    progress.tick();
    try {
      runMethod(p, null, s, scores["no adaptation"]);
      for (const m of methods) {
        progress.status(`seed ${seed}: ${m.name}`);
        runMethod(p, m, s, scores[m.name], si === 0 ? traces : undefined);
        progress.tick();
      }
    } finally {
      p.model.dispose();
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

export function table(
  title: string,
  rows: string[],
  scores: Record<string, Scores>,
  pick: (s: Score) => number,
  digits: number,
): string {
  const head = ["", ...CONDITIONS];
  const body = rows.map((row) => [
    row,
    ...CONDITIONS.map((c) => {
      const { mean, std } = meanStd(scores[row][c].map(pick));
      return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
    }),
  ]);
  return markdown(title, head, body);
}

/** A Markdown table with a title line; the first column left-aligned, the others right. */
export function markdown(title: string, head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [title, "", line(head), rule, ...body.map(line)].join("\n");
}

export const signed = (v: number, digits = 1): string => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(digits)}`;

/** What the adaptation settings of the demo are, in one line. */
export function protocol(s: DemoSettings, backend: string): string {
  return (
    `Seeds ${s.seeds.join(", ")}; backend ${backend}; W and b trained by fit() ${s.train.epochs} epochs (cross-entropy, ` +
    `SGD lr ${s.train.lr}, momentum ${s.train.momentum}, batch ${s.train.batch}; inputs standardised, standard ` +
    `deviations floored at ${s.minStd} pixel level); each adaptation runs ${s.adapt.epochs} passes over the unlabelled ` +
    `test condition in batches of ${s.adapt.batch} (gradient steps on G only: SGD, momentum ${s.adapt.momentum}, ` +
    `W and b frozen); label shift: classes ${s.labelShiftRatio}:1 from most to least frequent.`
  );
}

/** The demo's report: the headline, the two tables, how they were made. */
export function formatResult(r: DemoResult): string {
  const s = r.settings;
  const sum = summarize(r.scores[RECOMMENDED.name], r.scores["no adaptation"]);
  const plain = summarize(r.scores[PLAIN_ENTROPY.name], r.scores["no adaptation"]);
  const seeds = `${s.seeds.length} seed${s.seeds.length === 1 ? "" : "s"}`;
  return [
    `Recommended test-time adaptation: ${describe(RECOMMENDED.setting)}.`,
    `Against no adaptation, over the ${SHIFTED.length} shifts (mean over ${seeds}): ${signed(sum.meanGain)} points on ` +
      `average, ${signed(sum.worstGain)} on the worst (${sum.worstShift}), ${signed(sum.clean)} on clean data. ` +
      `Plain entropy minimisation: ${signed(plain.meanGain)} on average, ${signed(plain.worstGain)} on the worst ` +
      `(${plain.worstShift}), ${signed(plain.clean)} on clean data.`,
    "",
    table(
      `Accuracy (%) on the test split, mean ± standard deviation over ${seeds}`,
      r.rows,
      r.scores,
      (v) => 100 * v.accuracy,
      1,
    ),
    "",
    table("Mean entropy (bits per image, summed over the 10 outputs)", r.rows, r.scores, (v) => v.entropy, 2),
    "",
    `${protocol(s, r.backend)} Both settings as entrograd demo --study chose them on seeds ${s.selectionSeeds.join(", ")}. ` +
      `${r.seconds.toFixed(1)} s.`,
  ].join("\n");
}

/** A setting in words. */
export function describe(st: Setting): string {
  const parts: string[] = [];
  if (st.inputStats !== undefined && st.inputStats !== "keep")
    parts.push(
      `${st.balanceStats === false ? "" : "balanced "}re-standardisation of the inputs (${st.inputStats === "accumulate" ? "statistics accumulated over the test stream" : st.inputStats === "ema" ? "moving average of the batches' statistics" : "each batch's own statistics"})`,
    );
  if (st.lr > 0) {
    let e = `entropy minimisation of G (SGD lr ${st.lr})`;
    if (st.diversity !== undefined)
      e += `, prior-matched diversity λ = ${st.diversity}${st.marginalMomentum !== undefined ? ` (running marginal, momentum ${st.marginalMomentum})` : ""}`;
    if (st.maxEntropy !== undefined) e += `, filter E0 = ${threshold(st.maxEntropy)}`;
    if (st.weighting === "eata") e += ", EATA weights";
    if (st.anchor !== undefined) e += `, anchor decay ${st.anchor}`;
    if (st.resetBelow !== undefined) e += `, reset below ${threshold(st.resetBelow)}`;
    parts.push(e);
  }
  return parts.length === 0 ? "none" : parts.join(" + ");
}

/** A setting in a few words, for tables: "balanced ema · lr 0.1 · λ 30, β 0.9 · anchor 0.05". */
export function brief(st: Setting): string {
  const parts: string[] = [];
  if (st.inputStats !== undefined && st.inputStats !== "keep")
    parts.push(`${st.balanceStats === false ? "plain" : "balanced"} ${st.inputStats}`);
  if (st.lr > 0) parts.push(`lr ${st.lr}`);
  if (st.diversity !== undefined) parts.push(`λ ${st.diversity}, β ${st.marginalMomentum ?? 0.9}`);
  if (st.maxEntropy !== undefined)
    parts.push(`E0 ${threshold(st.maxEntropy)}${st.weighting === "eata" ? ", EATA" : ""}`);
  if (st.anchor !== undefined) parts.push(`anchor ${st.anchor}`);
  if (st.resetBelow !== undefined) parts.push(`reset < ${threshold(st.resetBelow)}`);
  return parts.join(" · ");
}

const threshold = (t: EntropyThreshold): string =>
  typeof t === "number" ? `${t} bits` : `${t.relative} × source entropy`;
