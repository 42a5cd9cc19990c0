// `entrograd train data.csv`: fits one sigmoid layer to a numeric CSV and writes it as a
// safetensors file. Features are standardised with the training rows' statistics while
// training, and the standardisation is folded into w and b before saving, so the saved model
// takes the raw feature values.

import { writeFileSync } from "node:fs";
import { Adam, Model, SGD, type BackendName } from "../index.js";
import { CsvError, readCsv, selectColumns, type Table } from "./csv.js";
import { CliError } from "./errors.js";
import { fitStandardizer, standardize } from "./digits.js";
import type { Progress } from "./progress.js";
import { Random } from "./random.js";

export interface TrainSettings {
  file: string;
  target?: string;
  features?: string;
  objective: "cross-entropy" | "entropy";
  /** Weight of an entropy term added to cross-entropy (0: none). */
  entropyWeight: number;
  optimizer: "sgd" | "adam";
  lr?: number;
  momentum: number;
  epochs: number;
  batchSize: number;
  backend: BackendName | "auto";
  seed: number;
  testFraction?: number;
  output: string;
}

export interface TrainReport {
  rows: number;
  features: string[];
  targets: string[];
  /** Class values when one integer label column was one-hot encoded. */
  classes: number[] | null;
  outputs: number;
  backend: BackendName;
  trainRows: number;
  testRows: number;
  losses: number[];
  trainAccuracy: number | null;
  testAccuracy: number | null;
  output: string;
  meta: string;
  seconds: number;
}

interface Encoded {
  y: Float32Array | null;
  outputs: number;
  classes: number[] | null;
  names: string[];
}

/** Targets: one integer column with more than two values becomes one-hot; otherwise every
 * target column must lie in [0, 1] and is one output. */
function encodeTargets(t: Table, cols: number[]): Encoded {
  const names = cols.map((c) => t.columns[c]);
  if (cols.length === 1) {
    const v = t.data[cols[0]];
    const distinct = [...new Set(v)].sort((a, b) => a - b);
    if (distinct.length > 2 || (distinct.length === 2 && !(distinct[0] === 0 && distinct[1] === 1))) {
      if (!distinct.every(Number.isInteger)) {
        throw new CsvError(
          `target "${names[0]}": ${distinct.length} distinct non-integer values; targets must be class labels or lie in [0, 1]`,
        );
      }
      if (distinct.length > 1000) throw new CsvError(`target "${names[0]}": ${distinct.length} classes is too many`);
      const index = new Map(distinct.map((c, i) => [c, i]));
      const y = new Float32Array(t.rows * distinct.length);
      for (let r = 0; r < t.rows; r++) y[r * distinct.length + (index.get(v[r]) as number)] = 1;
      return { y, outputs: distinct.length, classes: distinct, names };
    }
  }
  const y = new Float32Array(t.rows * cols.length);
  cols.forEach((c, k) => {
    for (let r = 0; r < t.rows; r++) {
      const v = t.data[c][r];
      if (!(v >= 0 && v <= 1)) throw new CsvError(`target "${t.columns[c]}", row ${r + 1}: ${v} is outside [0, 1]`);
      y[r * cols.length + k] = v;
    }
  });
  return { y, outputs: cols.length, classes: null, names };
}

function rowsOf(a: Float32Array, width: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let k = 0; k < rows.length; k++) out.set(a.subarray(rows[k] * width, (rows[k] + 1) * width), k * width);
  return out;
}

/** Fraction right: argmax for one-hot classes, D > 0.5 per unit otherwise. */
function accuracy(m: Model, x: Float32Array, y: Float32Array, oneHot: boolean): number {
  const { d } = m.forward(x);
  const O = m.outputs,
    n = d.length / O;
  let right = 0;
  if (oneHot) {
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let c = 1; c < O; c++) if (d[r * O + c] > d[r * O + best]) best = c;
      if (y[r * O + best] === 1) right++;
    }
    return right / n;
  }
  for (let k = 0; k < d.length; k++) if (d[k] > 0.5 === y[k] > 0.5) right++;
  return right / d.length;
}

/** W and b train; G stays 0 (it is the delta test-time adaptation adapts). */
function makeOptimizer(m: Model, s: TrainSettings): SGD | Adam {
  const groups = { g: { frozen: true } };
  if (s.optimizer === "sgd") return new SGD(m, { lr: s.lr ?? 0.05, momentum: s.momentum, groups });
  return new Adam(m, { lr: s.lr ?? 1e-2, groups });
}

export function train(s: TrainSettings, progress: Progress): TrainReport {
  const t0 = performance.now();
  const table = readCsv(s.file);
  const supervised = s.objective === "cross-entropy";
  let targetCols: number[] = [];
  if (s.target !== undefined) targetCols = selectColumns(table, s.target, "--target");
  else if (supervised) targetCols = [table.columns.length - 1];
  const featureCols =
    s.features !== undefined
      ? selectColumns(table, s.features, "--features")
      : table.columns.map((_, i) => i).filter((i) => !targetCols.includes(i));
  if (featureCols.length === 0) throw new CliError("no feature columns left: pass --features");
  const overlap = featureCols.filter((c) => targetCols.includes(c));
  if (overlap.length > 0) throw new CliError(`column "${table.columns[overlap[0]]}" is both a feature and a target`);
  const F = featureCols.length;
  const x = new Float32Array(table.rows * F);
  for (let r = 0; r < table.rows; r++) for (let k = 0; k < F; k++) x[r * F + k] = table.data[featureCols[k]][r];
  const enc: Encoded =
    targetCols.length > 0 ? encodeTargets(table, targetCols) : { y: null, outputs: 0, classes: null, names: [] };
  const outputs = supervised ? enc.outputs : Math.max(enc.outputs, 1);

  const testFraction = s.testFraction ?? (enc.y !== null ? 0.2 : 0);
  const order = new Random(s.seed ^ 0x5eed).permutation(table.rows);
  const nTest = Math.min(table.rows - 1, Math.round(table.rows * testFraction));
  const testRows = order.subarray(0, nTest),
    trainRows = order.subarray(nTest);
  const xTrainRaw = rowsOf(x, F, trainRows);
  const std = fitStandardizer(xTrainRaw, F);
  const xTrain = standardize(xTrainRaw, std);
  const xTest = standardize(rowsOf(x, F, testRows), std);
  const yTrain = enc.y === null ? null : rowsOf(enc.y, enc.outputs, trainRows);
  const yTest = enc.y === null ? null : rowsOf(enc.y, enc.outputs, testRows);

  const m = new Model({ inputs: F, outputs, seed: s.seed, backend: s.backend });
  try {
    const opt = makeOptimizer(m, s);
    const objective = supervised
      ? { crossEntropy: 1, ...(s.entropyWeight ? { entropy: s.entropyWeight } : {}) }
      : { entropy: 1 };
    const rng = new Random(s.seed * 7919 + 1);
    const nTrain = trainRows.length;
    const losses: number[] = [];
    progress.start(s.epochs);
    for (let e = 0; e < s.epochs; e++) {
      progress.status(`epoch ${e + 1}/${s.epochs}`);
      const p = rng.permutation(nTrain);
      let sum = 0;
      for (let at = 0; at < nTrain; at += s.batchSize) {
        const rows = p.subarray(at, Math.min(nTrain, at + s.batchSize));
        const xb = rowsOf(xTrain, F, rows);
        const r = supervised
          ? opt.step(xb, { objective, targets: rowsOf(yTrain as Float32Array, outputs, rows) })
          : opt.step(xb, { objective });
        sum += r.loss * rows.length;
      }
      losses.push(sum / nTrain);
      progress.tick();
    }
    progress.stop();
    const oneHot = enc.classes !== null;
    const trainAccuracy = supervised ? accuracy(m, xTrain, yTrain as Float32Array, oneHot) : null;
    const testAccuracy = supervised && nTest > 0 ? accuracy(m, xTest, yTest as Float32Array, oneHot) : null;

    // Fold the standardisation in: w·((x − μ)/σ) + b = (w/σ)·x + (b − Σ w·μ/σ).
    const w = Float32Array.from(m.w),
      b = Float64Array.from(m.b);
    for (let o = 0; o < outputs; o++)
      for (let i = 0; i < F; i++) {
        const k = o * F + i;
        b[o] -= (w[k] * std.mean[i]) / std.std[i];
        w[k] = w[k] / std.std[i];
      }
    using saved = Model.from({ inputs: F, outputs, w, b, backend: m.backend });
    writeFileSync(s.output, saved.save());
    const meta = `${s.output.replace(/\.safetensors$/i, "")}.json`;
    const report: TrainReport = {
      rows: table.rows,
      features: featureCols.map((c) => table.columns[c]),
      targets: enc.names,
      classes: enc.classes,
      outputs,
      backend: m.backend,
      trainRows: nTrain,
      testRows: nTest,
      losses,
      trainAccuracy,
      testAccuracy,
      output: s.output,
      meta,
      seconds: (performance.now() - t0) / 1000,
    };
    const card = {
      format: "entrograd model card",
      model: s.output,
      inputs: F,
      outputs,
      features: report.features,
      targets: report.targets,
      classes: report.classes,
      note:
        "w and b take the raw feature values (the training standardisation is folded in); output k is σ(z_k)" +
        (report.classes ? ", one per class in `classes`; the prediction is the argmax" : ""),
      objective,
      optimizer: s.optimizer,
      epochs: s.epochs,
      batchSize: s.batchSize,
      seed: s.seed,
      trainRows: nTrain,
      testRows: nTest,
      finalLoss: losses[losses.length - 1] ?? null,
      trainAccuracy,
      testAccuracy,
    };
    writeFileSync(meta, `${JSON.stringify(card, null, 2)}\n`);
    return report;
  } finally {
    m.dispose();
  }
}
