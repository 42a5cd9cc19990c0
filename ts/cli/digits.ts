// The optical digits (data/digits.csv, see data/README.md): 8×8 images with pixels 0..16, a
// seeded split, standardisation fitted on the clean training part, and the seeded shifts of
// the demo (Gaussian noise, a contrast change, a one-pixel translation, all three together).

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CsvError, readCsv } from "./csv.js";
import { Random } from "./random.js";

export const SIDE = 8;
export const PIXELS = SIDE * SIDE;
export const CLASSES = 10;
export const MAX_PIXEL = 16;

export interface Images {
  /** n × 64 raw pixels (0..16). */
  x: Float32Array;
  labels: Uint8Array;
  n: number;
}

/** data/digits.csv next to the package (dist/cli.js → ../data/digits.csv). */
export function defaultDigitsPath(): string {
  return fileURLToPath(new URL("../data/digits.csv", import.meta.url));
}

export function loadDigits(path = defaultDigitsPath()): Images {
  if (!existsSync(path)) throw new CsvError(`cannot find the digits data at ${path} (see data/README.md)`);
  const t = readCsv(path);
  const label = t.columns.indexOf("label");
  if (t.columns.length !== PIXELS + 1 || label !== PIXELS)
    throw new CsvError(`${path}: expected 64 pixel columns and "label"`);
  const x = new Float32Array(t.rows * PIXELS);
  const labels = new Uint8Array(t.rows);
  for (let r = 0; r < t.rows; r++) {
    for (let p = 0; p < PIXELS; p++) x[r * PIXELS + p] = t.data[p][r];
    const l = t.data[label][r];
    if (!Number.isInteger(l) || l < 0 || l >= CLASSES)
      throw new CsvError(`${path}: row ${r + 2}: label ${l} is not a digit`);
    labels[r] = l;
  }
  return { x, labels, n: t.rows };
}

export function subset(d: Images, idx: ArrayLike<number>): Images {
  const x = new Float32Array(idx.length * PIXELS);
  const labels = new Uint8Array(idx.length);
  for (let k = 0; k < idx.length; k++) {
    x.set(d.x.subarray(idx[k] * PIXELS, (idx[k] + 1) * PIXELS), k * PIXELS);
    labels[k] = d.labels[idx[k]];
  }
  return { x, labels, n: idx.length };
}

/** A seeded split: `testFraction` of the images for testing, the rest for training. */
export function split(d: Images, seed: number, testFraction: number): { train: Images; test: Images } {
  const p = new Random(seed ^ 0x5eed).permutation(d.n);
  const nTest = Math.round(d.n * testFraction);
  return { test: subset(d, p.subarray(0, nTest)), train: subset(d, p.subarray(nTest)) };
}

/** Per-feature mean and standard deviation of `x` (n × features). A standard deviation below
 * `minStd` is raised to it (a constant feature gets max(minStd, 1e-12 → 1)), so a feature that
 * hardly varies in training does not turn a small shift into a huge input. */
export function fitStandardizer(
  x: Float32Array,
  features: number,
  minStd = 0,
): { mean: Float64Array; std: Float64Array } {
  const n = x.length / features;
  const mean = new Float64Array(features),
    std = new Float64Array(features);
  for (let r = 0; r < n; r++) for (let f = 0; f < features; f++) mean[f] += x[r * features + f] / n;
  for (let r = 0; r < n; r++) for (let f = 0; f < features; f++) std[f] += (x[r * features + f] - mean[f]) ** 2 / n;
  for (let f = 0; f < features; f++)
    std[f] = std[f] > 1e-12 ? Math.max(Math.sqrt(std[f]), minStd) : Math.max(1, minStd);
  return { mean, std };
}

export function standardize(x: Float32Array, s: { mean: Float64Array; std: Float64Array }): Float32Array {
  const features = s.mean.length;
  return x.map((v, i) => (v - s.mean[i % features]) / s.std[i % features]);
}

/** One-hot targets, n × classes. */
export function oneHot(labels: Uint8Array, classes = CLASSES): Float32Array {
  const t = new Float32Array(labels.length * classes);
  labels.forEach((l, r) => {
    t[r * classes + l] = 1;
  });
  return t;
}

export type ShiftName = "noise" | "contrast" | "translate" | "all";
export const SHIFTS: readonly ShiftName[] = ["noise", "contrast", "translate", "all"];

/** How strong the shifts are (pixels are 0..16). */
export interface ShiftStrength {
  /** Gaussian noise of this standard deviation, in pixel units, then clipped to 0..16. */
  noise: number;
  /** Contrast: each image moves towards its own mean, p ← m + c·(p − m). */
  contrast: number;
}

/**
 * A shifted copy of raw images, seeded: "noise" adds Gaussian noise; "contrast" lowers each
 * image's contrast; "translate" moves every image one pixel in the same direction (up, down,
 * left or right, chosen by the seed: a shift of the whole test domain; what moves out is lost,
 * what moves in is 0); "all" does the three, in that order reversed (translate, contrast,
 * noise). Pixels stay within 0..16.
 */
export function shift(d: Images, kind: ShiftName, seed: number, strength: ShiftStrength): Images {
  const rng = new Random(seed);
  const x = d.x.slice();
  const clip = (v: number) => Math.min(MAX_PIXEL, Math.max(0, v));
  const img = new Float32Array(PIXELS);
  const [dy, dx] = [
    [-1, 0],
    [1, 0],
    [0, -1],
    [0, 1],
  ][rng.below(4)];
  for (let r = 0; r < d.n; r++) {
    const px = x.subarray(r * PIXELS, (r + 1) * PIXELS);
    if (kind === "translate" || kind === "all") {
      img.set(px);
      for (let y = 0; y < SIDE; y++)
        for (let c = 0; c < SIDE; c++) {
          const sy = y - dy,
            sx = c - dx;
          px[y * SIDE + c] = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE ? img[sy * SIDE + sx] : 0;
        }
    }
    if (kind === "contrast" || kind === "all") {
      let m = 0;
      for (let p = 0; p < PIXELS; p++) m += px[p] / PIXELS;
      for (let p = 0; p < PIXELS; p++) px[p] = clip(m + strength.contrast * (px[p] - m));
    }
    if (kind === "noise" || kind === "all") {
      for (let p = 0; p < PIXELS; p++) px[p] = clip(px[p] + strength.noise * rng.normal());
    }
  }
  return { x, labels: d.labels, n: d.n };
}

/**
 * A label shift of a test split, seeded: the classes ranked in a random order, and an image of
 * the class ranked r (0..9) kept with probability ratio^(−r/9), so the most frequent class is
 * about 1/ratio times as common as the rarest. The images themselves are unchanged.
 */
export function labelShift(d: Images, seed: number, ratio: number): Images {
  const rng = new Random(seed);
  const rank = rng.permutation(CLASSES);
  const keep: number[] = [];
  for (let r = 0; r < d.n; r++) if (rng.next() < ratio ** (-rank[d.labels[r]] / (CLASSES - 1))) keep.push(r);
  return subset(d, keep);
}
