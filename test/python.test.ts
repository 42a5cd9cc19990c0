// Files entrograd writes, read by Python's `safetensors` package, and files it writes, read by
// entrograd (scripts/setup.sh installs safetensors and numpy; without them this test fails).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Adam, init, Model, SGD } from "entrograd";
import * as ref from "./reference";
import { BACKENDS, batchX, defined, targetsFor } from "./helpers";

const script = fileURLToPath(new URL("./fixtures/safetensors_roundtrip.py", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "entrograd-py-"));

function python(command: "read" | "write", file: string): unknown {
  const out = execFileSync("python3", [script, command, file], { encoding: "utf8", timeout: 60_000 });
  return JSON.parse(out);
}

interface Read {
  metadata: Record<string, string> | null;
  tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
}

beforeAll(async () => {
  await init();
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe.each(BACKENDS)("Python's safetensors and entrograd on %s", (backend) => {
  it("Python reads what m.save() wrote: the same values, shapes, F32, and the metadata", () => {
    const rng = new ref.Rng(31);
    const m = new Model({ inputs: 5, outputs: 3, seed: 4, backend });
    const opt = new SGD(m, { lr: 0.1, momentum: 0.9 });
    for (let s = 0; s < 3; s++) opt.step(batchX(rng, 6, 5));
    const file = join(dir, `model-${backend}.safetensors`);
    writeFileSync(file, m.save());
    const got = python("read", file) as Read;
    expect(got.metadata).toEqual({ format: "entrograd", version: "1", units: "bits" });
    expect(Object.keys(got.tensors).sort()).toEqual(["b", "g", "w"]);
    for (const k of ["w", "g", "b"] as const) {
      expect(got.tensors[k].dtype).toBe("float32");
      expect(got.tensors[k].shape).toEqual(k === "b" ? [3] : [3, 5]);
      expect(got.tensors[k].values, k).toEqual(Array.from(m[k]));
    }
    m.dispose();
  });

  it("Python reads the optimizer state file (torch names), and opt.load() restores it", () => {
    const rng = new ref.Rng(32);
    const m = new Model({ inputs: 4, outputs: 2, seed: 5, backend });
    const opt = new Adam(m, { lr: 0.01, groups: { w: { frozen: true } } });
    const xs = [batchX(rng, 5, 4), batchX(rng, 5, 4)];
    const ys = [targetsFor(rng, 10), targetsFor(rng, 10)];
    for (let s = 0; s < 4; s++) opt.step(xs[s % 2], { objective: { crossEntropy: 1 }, targets: ys[s % 2] });
    const file = join(dir, `adam-${backend}.safetensors`);
    writeFileSync(file, opt.save());
    const got = python("read", file) as Read;
    expect(got.metadata).toMatchObject({
      format: "entrograd-optimizer",
      version: "1",
      type: "Adam",
      "g.step": "4",
      "b.step": "4",
      "w.step": "0",
    });
    expect(Object.keys(got.tensors).sort()).toEqual(["b.exp_avg", "b.exp_avg_sq", "g.exp_avg", "g.exp_avg_sq"]);
    const sd = opt.stateDict();
    expect(got.tensors["g.exp_avg_sq"].values).toEqual(Array.from(defined(sd.state.g.expAvgSq, "g's second moment")));
    expect(got.tensors["b.exp_avg"].shape).toEqual([2]);
    // A fresh optimizer loading the file continues exactly as the original.
    const twin = m.clone();
    const opt2 = new Adam(twin, { lr: 0.01, groups: { w: { frozen: true } } });
    opt2.load(new Uint8Array(readFileSync(file)));
    expect(opt2.stateDict()).toStrictEqual(sd);
    for (let s = 0; s < 3; s++) {
      const call = { objective: { crossEntropy: 1 }, targets: ys[s % 2] };
      expect(opt2.step(xs[s % 2], call).loss).toBe(opt.step(xs[s % 2], call).loss);
      expect(Array.from(twin.g)).toEqual(Array.from(m.g));
    }
    m.dispose();
    twin.dispose();
  });

  it("Python reads a model with input statistics, prior and source entropy (version 2)", () => {
    const rng = new ref.Rng(33);
    const m = new Model({ inputs: 5, outputs: 3, seed: 6, backend });
    m.setInputStats([1, 2, 3, 4, 5], [0.5, 1, 0, 2, 3], { minStd: 0.25 });
    m.setPrior([0.5, 0.25, 0.25]);
    m.setSourceEntropy(0.3125);
    new SGD(m, { lr: 0.1 }).step(batchX(rng, 6, 5));
    const file = join(dir, `stats-${backend}.safetensors`);
    writeFileSync(file, m.save());
    const got = python("read", file) as Read;
    expect(got.metadata).toEqual({
      format: "entrograd",
      version: "2",
      units: "bits",
      input_min_std: "0.25",
      source_entropy: "0.3125",
    });
    expect(Object.keys(got.tensors).sort()).toEqual(["b", "g", "input_mean", "input_std", "prior", "w"]);
    const st = defined(m.inputStats, "inputStats");
    expect(got.tensors.input_mean.values).toEqual(Array.from(st.mean));
    expect(got.tensors.input_std.values).toEqual([0.5, 1, 0.25, 2, 3]);
    expect(got.tensors.prior).toEqual({ dtype: "float32", shape: [3], values: [0.5, 0.25, 0.25] });
    const back = Model.load(new Uint8Array(readFileSync(file)), { backend });
    expect(back.inputStats).toEqual(st);
    expect(back.prior).toEqual(m.prior);
    expect(back.sourceEntropy).toBe(0.3125);
    m.dispose();
    back.dispose();
  });

  it("Model.load() reads what Python's safetensors wrote", () => {
    const file = join(dir, `python-${backend}.safetensors`);
    const wrote = python("write", file) as Record<"w" | "g" | "b", number[]>;
    const m = Model.load(new Uint8Array(readFileSync(file)), { backend });
    expect([m.inputs, m.outputs, m.backend]).toEqual([5, 3, backend]);
    for (const k of ["w", "g", "b"] as const) expect(Array.from(m[k]), k).toEqual(wrote[k]);
    m.dispose();
  });
});
