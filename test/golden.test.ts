// Golden results: a fixed corpus of public calls on every backend, each result hashed, compared
// with test/golden/hashes.json. It pins the exact bits the package computes, so a refactor of the
// core or of the TS ↔ core seam that changes any result — on any backend — fails here.
// (Correctness is checked elsewhere against float64 references; this test only says "unchanged".)
//
// After a deliberate change of results (a new summation order, say): GOLDEN_UPDATE=1 npx vitest
// run test/golden.test.ts, and say why in the commit.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { Adam, AdamW, Adapter, init, Model, SGD, type LossOptions } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, type Backend } from "./helpers";

const FILE = new URL("./golden/hashes.json", import.meta.url);

beforeAll(async () => {
  await init();
});

/** Deterministic inputs: xs in [-2, 2), targets in [0, 1]. */
function data(seed: number, batch: number, inputs: number, outputs: number) {
  const rng = new ref.Rng(seed);
  const x = new Float32Array(batch * inputs).map(() => 4 * rng.next() - 2);
  const targets = new Float32Array(batch * outputs).map(() => (rng.next() < 0.5 ? 0 : 1));
  return { x, targets };
}

/** Hash of the bits of what a call returned (numbers as float64, arrays as their bytes). */
class Recorder {
  private readonly h = createHash("sha256");
  add(v: unknown): void {
    if (typeof v === "number") this.h.update(Buffer.from(new Float64Array([v]).buffer));
    else if (v instanceof Float32Array || v instanceof Uint8Array)
      this.h.update(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    else if (Array.isArray(v)) for (const e of v) this.add(e);
    else if (typeof v === "boolean") this.add(v ? 1 : 0);
    else if (v === null || v === undefined) this.h.update(String(v));
    else if (typeof v === "string") this.h.update(`"${v}"`);
    else if (typeof v === "object") {
      for (const k of Object.keys(v).sort()) {
        this.h.update(k);
        this.add((v as Record<string, unknown>)[k]);
      }
    } else throw new Error(`cannot record ${String(v)}`);
  }
  params(m: Model): void {
    this.add([m.w, m.g, m.b]);
  }
  digest(): string {
    return this.h.digest("hex").slice(0, 32);
  }
}

type Case = (backend: Backend, r: Recorder) => void;

const SHAPES = [
  [5, 3],
  [64, 16],
  [37, 10],
  [19, 13],
] as const;
const OBJECTIVES: LossOptions["objective"][] = [
  { entropy: 1 },
  { crossEntropy: 1 },
  { crossEntropy: 1, entropy: 0.25 },
];

const CASES: Record<string, Case> = {};

for (const [inputs, outputs] of SHAPES) {
  const tag = `${inputs}x${outputs}`;
  CASES[`forward, entropy ${tag}`] = (backend, r) => {
    const m = new Model({ inputs, outputs, seed: 3, backend });
    m.b.set(new Float32Array(outputs).map((_, o) => 0.1 * o - 0.2));
    for (const batch of [1, 3, 8, 33]) {
      const { x } = data(batch, batch, inputs, outputs);
      const { z, d } = m.forward(x);
      r.add([z, d]);
      r.add(m.entropy(x));
      r.add(m.entropy(x, { reduction: "sum" }));
      r.add(m.entropy(x, { reduction: "none" }));
    }
    m.dispose();
  };
  for (const [k, objective] of OBJECTIVES.entries()) {
    CASES[`gradients ${tag} objective ${k}`] = (backend, r) => {
      const m = new Model({ inputs, outputs, seed: 5 + k, backend });
      m.g.set(new Float32Array(inputs * outputs).map((_, i) => 0.01 * ((i % 7) - 3)));
      for (const reduction of ["mean", "sum", "none"] as const) {
        for (const batch of [2, 9, 40]) {
          const { x, targets } = data(11 * batch + k, batch, inputs, outputs);
          const opts: LossOptions = objective?.crossEntropy
            ? { reduction, objective, targets }
            : { reduction, objective };
          const gr = m.gradients(x, opts);
          r.add([gr.loss, gr.entropy, gr.dw, gr.db]);
        }
      }
      m.dispose();
    };
  }
}

/** Optimizer configurations, each trained for a few steps over growing batches. */
const OPTIMIZERS: Record<string, (m: Model) => SGD | Adam> = {
  "sgd plain": (m) => new SGD(m, { lr: 0.1 }),
  "sgd momentum": (m) => new SGD(m, { lr: 0.05, momentum: 0.9 }),
  "sgd momentum dampening": (m) => new SGD(m, { lr: 0.05, momentum: 0.9, dampening: 0.3 }),
  "sgd nesterov decay": (m) => new SGD(m, { lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.01 }),
  "sgd groups": (m) => new SGD(m, { lr: 0.1, groups: { w: { frozen: true }, g: { lr: 0.03, weightDecay: 1e-3 } } }),
  "sgd clip": (m) => new SGD(m, { lr: 0.2, momentum: 0.5, maxGradNorm: 0.05 }),
  adam: (m) => new Adam(m, { lr: 0.01 }),
  "adam betas eps decay": (m) => new Adam(m, { lr: 0.02, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 }),
  adamw: (m) => new AdamW(m, { lr: 0.01, groups: { b: { frozen: true } } }),
  "adam clip": (m) => new Adam(m, { lr: 0.05, maxGradNorm: 0.1 }),
};

for (const [name, make] of Object.entries(OPTIMIZERS)) {
  for (const [k, objective] of OBJECTIVES.entries()) {
    for (const reduction of ["mean", "sum"] as const) {
      CASES[`step ${name} objective ${k} ${reduction}`] = (backend, r) => {
        const [inputs, outputs] = SHAPES[(k + (reduction === "sum" ? 1 : 0)) % SHAPES.length];
        const m = new Model({ inputs, outputs, seed: 17 + k, backend });
        const opt = make(m);
        for (const [s, batch] of [4, 4, 9, 30, 7, 64].entries()) {
          const { x, targets } = data(100 * s + k, batch, inputs, outputs);
          const opts: LossOptions = objective?.crossEntropy
            ? { reduction, objective, targets }
            : { reduction, objective };
          // Every other step through the staging view (no copy).
          const input = s % 2 === 1 ? m.input(batch) : null;
          if (input !== null) input.set(x);
          const res = opt.step(input ?? x, opts);
          r.add([res.loss, res.entropy]);
          r.params(m);
        }
        r.add(opt.stateDict() as unknown as Record<string, unknown>);
        m.dispose();
      };
    }
  }
}

const ADAPT: Record<string, ConstructorParameters<typeof Adapter>[2]> = {
  plain: {},
  filter: { maxEntropy: 2.5 },
  eata: { maxEntropy: 3, weighting: "eata" },
  diversity: { diversity: 0.5, prior: 0.1 },
  all: { maxEntropy: 3, weighting: "eata", diversity: 1, prior: 0.1, resetBelow: 0.5 },
  sum: { reduction: "sum", maxEntropy: 2 },
  "input statistics": { inputStats: "accumulate", diversity: 2, marginalMomentum: 0.5 },
  "input statistics, ema, plain": { inputStats: "ema", balanceStats: false, maxEntropy: { relative: 3 } },
};

for (const [name, options] of Object.entries(ADAPT)) {
  CASES[`adapt ${name}`] = (backend, r) => {
    const [inputs, outputs] = [37, 10];
    const m = new Model({ inputs, outputs, seed: 23, backend });
    m.b.set(new Float32Array(outputs).map((_, o) => 0.3 * ((o % 3) - 1)));
    if (name.startsWith("input statistics")) {
      m.setInputStats(
        Array.from({ length: inputs }, (_, i) => 0.1 * (i % 5) - 0.2),
        Array.from({ length: inputs }, (_, i) => 0.5 + 0.05 * (i % 7)),
      );
      m.setPrior(Array.from({ length: outputs }, (_, o) => (o + 1) / 55));
      m.setSourceEntropy(2.5);
    }
    const opt = new SGD(m, { lr: 0.2, momentum: 0.5, groups: { w: { frozen: true }, b: { frozen: true } } });
    const tta = new Adapter(m, opt, options);
    for (const [s, batch] of [16, 16, 40, 5].entries()) {
      const { x } = data(1000 + s, batch, inputs, outputs);
      const res = tta.step(x);
      r.add([
        res.loss,
        res.entropy,
        res.kept,
        res.diversity,
        res.reset,
        Array.from(res.positive),
        Array.from(res.meanPrediction),
      ]);
      r.params(m);
      // (Recorded only where they exist, so the older cases keep their hashes.)
      if (res.marginal !== null) r.add(Array.from(res.marginal));
      if (m.inputStats !== null) r.add(m.inputStats);
    }
    tta.reset();
    r.params(m);
    if (m.inputStats !== null) r.add(m.inputStats);
    m.dispose();
  };
}

CASES["semi-supervised steps"] = (backend, r) => {
  const [inputs, outputs] = [21, 6];
  const m = new Model({ inputs, outputs, seed: 31, backend });
  const opt = new SGD(m, { lr: 0.1, momentum: 0.9 });
  for (const [s, [batch, labelled]] of [
    [12, 5],
    [12, 0],
    [7, 7],
  ].entries()) {
    const { x, targets } = data(2000 + s, batch, inputs, outputs);
    const res = opt.step(x, {
      objective: { crossEntropy: 1, entropy: 0.3 },
      targets: targets.subarray(0, labelled * outputs),
      labelledRows: labelled,
    });
    r.add([res.loss, res.entropy]);
    r.params(m);
  }
  m.dispose();
};

CASES["save, load, clone"] = (backend, r) => {
  const m = new Model({ inputs: 19, outputs: 13, seed: 9, init: "normal", backend });
  const bytes = m.save();
  r.add(bytes);
  const l = Model.load(bytes, { backend });
  r.params(l);
  r.params(m.clone());
  for (const init of ["xavier", "uniform", "normal", "zeros"] as const)
    r.params(new Model({ inputs: 7, outputs: 5, init, seed: 1, backend }));
};

function run(): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const backend of BACKENDS) {
    out[backend] = {};
    for (const [name, c] of Object.entries(CASES)) {
      const r = new Recorder();
      c(backend, r);
      out[backend][name] = r.digest();
    }
  }
  return out;
}

describe("golden results (bitwise, every backend)", () => {
  it("every case hashes as recorded in test/golden/hashes.json", () => {
    const got = run();
    if (process.env.GOLDEN_UPDATE === "1" || !existsSync(FILE)) {
      if (process.env.CI)
        throw new Error("test/golden/hashes.json is missing; GOLDEN_UPDATE=1 is for development only");
      writeFileSync(FILE, `${JSON.stringify(got, null, 1)}\n`);
    }
    const want = JSON.parse(readFileSync(FILE, "utf8")) as typeof got;
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    const changed: string[] = [];
    for (const backend of Object.keys(want))
      for (const name of Object.keys({ ...want[backend], ...got[backend] }))
        if (want[backend][name] !== got[backend]?.[name]) changed.push(`${backend}: ${name}`);
    expect(changed, "cases whose results changed").toEqual([]);
  });
});
