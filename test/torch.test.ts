// Every backend against PyTorch itself: the trajectories in fixtures/torch_trajectories.json were
// computed by torch (torch.optim.SGD / AdamW, param groups, a frozen parameter, clip_grad_norm_,
// lr_scheduler) in float64, and again in float32. Each backend must follow the float64 trajectory
// within 4× the distance of torch's own float32 run from it, plus 1e−7 absolute: as close to the
// exact trajectory as PyTorch's float32 gets, within a small factor.
//
// The tolerance at step s is 4·D(s) + 1e−7, with D(s) the largest |float32 − float64| of torch's
// runs over every parameter value and every step up to s (for the losses, over the losses).
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import * as pkg from "entrograd";
import { BACKENDS, defined } from "./helpers";

const dir = new URL("./fixtures/", import.meta.url);
const fixture = JSON.parse(readFileSync(new URL("torch_trajectories.json", dir), "utf8")) as Fixture;

type Param = "w" | "g" | "b";
interface Run {
  loss: number[];
  entropy: number[];
  w: number[][];
  g: number[][];
  b: number[][];
  lr?: (number | null)[][];
}
interface SchedulerSpec {
  type: string;
  options?: Record<string, unknown>;
  schedulers?: SchedulerSpec[];
  milestones?: number[];
}
interface Case {
  name: string;
  optimizer: "SGD" | "Adam" | "AdamW";
  options: Record<string, unknown> & { groups?: Partial<Record<Param, { frozen?: boolean }>> };
  scheduler: SchedulerSpec | null;
  objective: { entropy?: number; crossEntropy?: number };
  float64: Run;
  float32: Run;
}
interface Fixture {
  generatorSha256: string;
  torch: string;
  inputs: number;
  outputs: number;
  batch: number;
  steps: number;
  init: Record<Param, number[]>;
  batches: { x: number[]; targets: number[] }[];
  cases: Case[];
}

const PARAMS: Param[] = ["w", "g", "b"];
const FACTOR = 4;
const ABSOLUTE = 1e-7;

/** Tolerances per step from torch's float32 deviation (cumulative max over steps). */
function tolerances(c: Case): { params: number[]; loss: number[] } {
  const params: number[] = [];
  const loss: number[] = [];
  let dp = 0;
  let dl = 0;
  for (let s = 0; s < fixture.steps; s++) {
    for (const k of PARAMS) {
      const a = c.float64[k][s],
        b = c.float32[k][s];
      for (let i = 0; i < a.length; i++) dp = Math.max(dp, Math.abs(a[i] - b[i]));
    }
    dl = Math.max(
      dl,
      Math.abs(c.float64.loss[s] - c.float32.loss[s]),
      Math.abs(c.float64.entropy[s] - c.float32.entropy[s]),
    );
    params.push(FACTOR * dp + ABSOLUTE);
    loss.push(FACTOR * dl + ABSOLUTE);
  }
  return { params, loss };
}

type AnyOptimizer = InstanceType<typeof pkg.SGD> | InstanceType<typeof pkg.Adam>;

function scheduler(opt: AnyOptimizer, spec: SchedulerSpec): pkg.LRScheduler {
  switch (spec.type) {
    case "StepLR":
      return new pkg.StepLR(opt, spec.options as { stepSize: number });
    case "ExponentialLR":
      return new pkg.ExponentialLR(opt, spec.options as { gamma: number });
    case "CosineAnnealingLR":
      return new pkg.CosineAnnealingLR(opt, spec.options as { tMax: number });
    case "LinearLR":
      return new pkg.LinearLR(opt, spec.options);
    case "SequentialLR":
      return new pkg.SequentialLR(opt, {
        schedulers: (spec.schedulers ?? []).map((s) => scheduler(opt, s)),
        milestones: spec.milestones ?? [],
      });
    default:
      throw new Error(`unknown scheduler ${spec.type}`);
  }
}

function optimizer(m: InstanceType<typeof pkg.Model>, c: Case): AnyOptimizer {
  const Class = { SGD: pkg.SGD, Adam: pkg.Adam, AdamW: pkg.AdamW }[c.optimizer];
  return new Class(m, structuredClone(c.options) as never);
}

const batches = fixture.batches.map((b) => ({ x: Float32Array.from(b.x), targets: Float32Array.from(b.targets) }));

beforeAll(async () => {
  await pkg.init();
});

describe("the fixtures", () => {
  it("were written by the committed generator (regenerate with python3 test/fixtures/torch_reference.py)", () => {
    const script = readFileSync(new URL("torch_reference.py", dir));
    expect(createHash("sha256").update(script).digest("hex")).toBe(fixture.generatorSha256);
  });

  it("cover SGD (plain, momentum, Nesterov, decay), Adam and AdamW with groups and a frozen w, schedules and clipping", () => {
    const cs = fixture.cases;
    const has = (f: (c: Case) => boolean) => cs.some(f);
    expect(has((c) => c.optimizer === "SGD" && Object.keys(c.options).length === 1)).toBe(true);
    expect(has((c) => c.optimizer === "SGD" && c.options.nesterov === true)).toBe(true);
    expect(has((c) => c.optimizer === "SGD" && (c.options.momentum as number) > 0)).toBe(true);
    expect(has((c) => c.optimizer === "SGD" && (c.options.weightDecay as number) > 0)).toBe(true);
    for (const o of ["Adam", "AdamW"])
      expect(has((c) => (c.optimizer === o && c.options.groups?.w?.frozen === true) || c.optimizer === o)).toBe(true);
    expect(has((c) => c.optimizer !== "SGD" && c.options.groups?.w?.frozen === true)).toBe(true);
    expect(has((c) => c.options.maxGradNorm !== undefined)).toBe(true);
    for (const t of ["StepLR", "ExponentialLR", "CosineAnnealingLR", "SequentialLR"])
      expect(has((c) => c.scheduler?.type === t)).toBe(true);
    // The float32 run is a different trajectory (else the tolerance would be 1e-7 only).
    for (const c of cs) expect(tolerances(c).params.at(-1), c.name).toBeGreaterThan(ABSOLUTE);
  });
});

describe.each(BACKENDS)("PyTorch's trajectories on %s", (backend) => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const m = pkg.Model.from({
      inputs: fixture.inputs,
      outputs: fixture.outputs,
      backend,
      w: fixture.init.w,
      g: fixture.init.g,
      b: fixture.init.b,
    });
    const opt = optimizer(m, c);
    const sched = c.scheduler === null ? null : scheduler(opt, c.scheduler);
    const tol = tolerances(c);
    const want = c.float64;
    const frozen = PARAMS.filter((k) => c.options.groups?.[k]?.frozen === true);
    let worst = 0;
    for (let s = 0; s < fixture.steps; s++) {
      const { x, targets } = batches[s % batches.length];
      const got = opt.step(x, { objective: c.objective, targets: c.objective.crossEntropy ? targets : undefined });
      sched?.step();
      const lossErr = Math.max(Math.abs(got.loss - want.loss[s]), Math.abs(got.entropy - want.entropy[s]));
      expect(
        lossErr,
        `step ${s}: loss ${got.loss} vs ${want.loss[s]}, entropy ${got.entropy} vs ${want.entropy[s]}`,
      ).toBeLessThanOrEqual(tol.loss[s]);
      for (const k of PARAMS) {
        const a = m[k];
        const e = want[k][s];
        for (let i = 0; i < e.length; i++) {
          const err = Math.abs(a[i] - e[i]);
          worst = Math.max(worst, err / tol.params[s]);
          if (!(err <= tol.params[s])) {
            expect.fail(
              `step ${s} ${k}[${i}]: ${a[i]} vs torch float64 ${e[i]}: off by ${err.toExponential(2)} > ${tol.params[s].toExponential(2)}`,
            );
          }
        }
        if (frozen.includes(k)) expect(Array.from(a)).toEqual(Array.from(Float32Array.from(fixture.init[k])));
      }
      // The schedulers agree with torch's lr for the next step, for each parameter's group.
      const lrs = defined(want.lr, "the fixture's lr trajectory")[s];
      PARAMS.forEach((k, i) => {
        const lr = lrs[i];
        if (lr !== null) expect(opt.lrOf(k), `lr of ${k} after step ${s}`).toBeCloseTo(lr, 14);
      });
    }
    // The run was not trivially inside the tolerance (e.g. not moving at all).
    expect(worst).toBeGreaterThan(0);
    if (process.env.ENTROGRAD_REPORT)
      console.log(
        `${backend} ${c.name}: worst err/tol ${worst.toFixed(3)}, final tol ${tol.params.at(-1)?.toExponential(2)}`,
      );
    m.dispose();
  });
});
