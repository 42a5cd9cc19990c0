// The `entrograd` command as a user runs it: `node dist/cli.js …` in a child process, with
// real files in a temporary directory.
import { execFile } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { init, Model } from "entrograd";
import { defined } from "./helpers";

const root = fileURLToPath(new URL("..", import.meta.url));
const cli = join(root, "dist", "cli.js");
let dir = "";

beforeAll(async () => {
  await init();
  dir = mkdtempSync(join(tmpdir(), "entrograd-cli-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], options: { cwd?: string; script?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [options.script ?? cli, ...args],
      { cwd: options.cwd ?? dir, timeout: 60_000, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The rows of a Markdown table that starts at the line `title`. */
function tableAfter(text: string, title: RegExp): string[][] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => title.test(l));
  expect(start, `a table titled ${title}`).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith("|")) break;
    if (/^\|[-:| ]+\|$/.test(l)) continue; // the header rule
    rows.push(
      l
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}

/** Three-class data: the class is which of three linear scores is largest, plus a 0/1 column. */
function writeCsv(path: string, rows: number): void {
  let s = 1;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const lines = ["a,b,c,d,flag,label"];
  for (let r = 0; r < rows; r++) {
    const f = [rand() * 4, rand() * 10 - 5, rand(), rand() * 2 + 100];
    const scores = [f[0] - 2, f[1] * 0.4, (f[2] - 0.5) * 6];
    const label = scores.indexOf(Math.max(...scores)) * 3 + 1; // classes 1, 4, 7
    lines.push([...f.map((v) => v.toFixed(4)), r % 2, label].join(","));
  }
  writeFileSync(path, `${lines.join("\n")}\n`);
}

describe("entrograd CLI", () => {
  it("is the package's bin, a separate entry: the library does not load commander or cli-progress", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    expect(pkg.bin).toEqual({ entrograd: "./dist/cli.js" });
    expect(Object.keys(pkg.dependencies).sort()).toEqual(["cli-progress", "commander"]);
    expect(readFileSync(cli, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    for (const f of readdirSync(join(root, "dist")).filter((f) => /\.(c?js)$/.test(f) && f !== "cli.js")) {
      expect(readFileSync(join(root, "dist", f), "utf8"), f).not.toMatch(/commander|cli-progress/);
    }
  });

  it("--help lists the commands; an unknown command fails", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const c of ["demo", "train", "bench", "info"]) expect(help.stdout).toContain(c);
    const bad = await run(["frobnicate"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown command/);
  });

  it("info: runtime, backends and SIMD, as text and JSON", async () => {
    const text = await run(["info"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^entrograd \d+\.\d+\.\d+/);
    expect(text.stdout).toMatch(/runtime\s+Node\.js v\d+/);
    expect(text.stdout).toMatch(/SIMD128\s+yes/);
    expect(text.stdout).toMatch(/wasm-simd available, wasm available, js available/);
    const json = JSON.parse((await run(["info", "--json"])).stdout);
    expect(json.backends).toEqual({ "wasm-simd": true, wasm: true, js: true });
    expect(json.default).toBe("wasm-simd");
    expect(json.simd).toBe(true);
  });

  it("demo --quick: the recommended setting against no adaptation, two tables, the JSON and the SVG", async () => {
    const r = await run(["demo", "--quick", "--seeds", "1", "--json", "scores.json", "--plot", "chart.svg"]);
    expect(r.code, r.stderr).toBe(0);
    const conditions = ["clean", "noise", "contrast", "translate", "all", "label"];
    // It leads with the recommended setting and how it compares with doing nothing.
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^Recommended test-time adaptation: .*re-standardisation.*prior-matched diversity/);
    expect(lines[1]).toMatch(
      /^Against no adaptation, over the 5 shifts \(mean over 1 seed\): [+−]\d+\.\d points on average, [+−]\d+\.\d on the worst \(\w+\), [+−]\d+\.\d on clean data\./,
    );
    const acc = tableAfter(r.stdout, /^Accuracy \(%\)/);
    const ent = tableAfter(r.stdout, /^Mean entropy/);
    for (const t of [acc, ent]) {
      expect(t[0]).toEqual(["", ...conditions]);
      expect(t.slice(1).map((row) => row[0])).toEqual(["no adaptation", "recommended", "entropy minimisation (TENT)"]);
    }
    const cell = (s: string) => {
      const m = defined(/^(-?\d+\.\d+) ± (\d+\.\d+)$/.exec(s), `cell "${s}" as mean ± sd`);
      return Number(m[1]);
    };
    for (const row of acc.slice(1)) for (const c of row.slice(1)) expect(cell(c)).toBeGreaterThanOrEqual(0);
    for (const row of acc.slice(1)) for (const c of row.slice(1)) expect(cell(c)).toBeLessThanOrEqual(100);
    for (const row of ent.slice(1)) for (const c of row.slice(1)) expect(cell(c)).toBeGreaterThanOrEqual(0);
    expect(cell(acc[1][1]), "clean accuracy without adaptation").toBeGreaterThan(85);
    expect(cell(acc[1][5]), "the combined shift hurts").toBeLessThan(cell(acc[1][1]));
    // Re-standardisation undoes the contrast shift (measured: about 55 % → 95 %).
    expect(cell(acc[2][3]), "contrast, recommended").toBeGreaterThan(cell(acc[1][3]) + 10);
    // The headline's mean gain is the table's.
    const gain = conditions.slice(1).reduce((a, _c, i) => a + cell(acc[2][i + 2]) - cell(acc[1][i + 2]), 0) / 5;
    const said = Number(defined(/: ([+−]\d+\.\d) points on average/.exec(lines[1]), "mean gain")[1].replace("−", "-"));
    expect(Math.abs(said - gain)).toBeLessThan(0.11);

    const json = JSON.parse(readFileSync(join(dir, "scores.json"), "utf8"));
    expect(json.rows).toEqual(acc.slice(1).map((row) => row[0]));
    for (const row of json.rows)
      for (const c of conditions) {
        expect(json.scores[row][c]).toHaveLength(1);
        expect(
          Math.abs(
            100 * json.scores[row][c][0].accuracy - cell(acc[json.rows.indexOf(row) + 1][conditions.indexOf(c) + 1]),
          ),
        ).toBeLessThan(0.051);
      }
    const svg = readFileSync(join(dir, "chart.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(2 * 2);
    expect(svg).toContain("contrast shift");
    // Not a terminal: no progress bar on stderr, only the two "wrote" lines.
    expect(r.stderr.trim().split("\n")).toEqual(["wrote chart.svg", "wrote scores.json"]);
  });

  it("demo --study --quick: selection on seeds 1-3, the report table, the correlations, semi-supervised", async () => {
    const r = await run(["demo", "--study", "--quick", "--seeds", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Recommended setting \(chosen on seeds 1, 2, 3\): /);
    const report = tableAfter(r.stdout, /^Accuracy \(%\) on the report seeds \(4\)/);
    expect(report[0]).toEqual([
      "",
      "clean",
      "noise",
      "contrast",
      "translate",
      "all",
      "label",
      "mean gain",
      "worst shift",
      "clean",
    ]);
    const names = report.slice(1).map((row) => row[0]);
    for (const n of [
      "no adaptation",
      "re-standardisation",
      "balanced re-standardisation",
      "entropy minimisation (TENT)",
      "entropy + re-standardisation",
      "prior-matched diversity",
      "prior-matched diversity + re-standardisation",
    ])
      expect(names).toContain(n);
    expect(names.filter((n) => /^\+ (filter|EATA|anchor|reset|all four)/.test(n))).toHaveLength(5);
    const selection = tableAfter(r.stdout, /^Selection: /);
    expect(selection.slice(1).map((row) => row[0])).toEqual(names.slice(1));
    const corr = tableAfter(r.stdout, /entropy-based settings tried/);
    expect(corr.slice(1).map((row) => row[0])).toEqual(["mean entropy after adaptation", "prior gap Σₒ KL(πₒ ‖ p̄ₒ)"]);
    const semi = tableAfter(r.stdout, /^Semi-supervised training/);
    expect(semi.slice(1).map((row) => row[0])).toEqual(["10", "30", "100"]);
    expect(semi.slice(1).every((row) => row.filter((c) => c.endsWith("*")).length === 1)).toBe(true);
    expect(r.stdout).toMatch(/Selection seeds 1, 2, 3, report seeds 4\. \d+\.\d s\.$/m);
  }, 120_000);

  it("demo: bad options fail with a message", async () => {
    const r = await run(["demo", "--seeds", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--seeds/);
    const b = await run(["demo", "--quick", "--backend", "gpu"]);
    expect(b.code).not.toBe(0);
    expect(b.stderr).toMatch(/Allowed choices are auto, wasm-simd, wasm, js/);
    const d = await run(["demo", "--quick", "--data", "missing.csv"]);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/^entrograd: cannot find the digits data at/);
  });

  it("train: a CSV with class labels becomes a safetensors model that loads and predicts", async () => {
    const csv = join(dir, "three.csv");
    writeCsv(csv, 600);
    const r = await run([
      "train",
      "three.csv",
      "--target",
      "label",
      "--features",
      "a,b,2",
      "--epochs",
      "15",
      "--batch-size",
      "16",
      "--backend",
      "js",
      "-o",
      "three.safetensors",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/trained 3 outputs on 3 features, 480 rows \(120 held out\), backend js/);
    expect(r.stdout).toMatch(/classes\s+1, 4, 7/);
    const test = Number(defined(/test (\d+\.\d)%/.exec(r.stdout), "the test accuracy")[1]);
    expect(test).toBeGreaterThan(85);
    const card = JSON.parse(readFileSync(join(dir, "three.json"), "utf8"));
    expect(card).toMatchObject({
      inputs: 3,
      outputs: 3,
      features: ["a", "b", "c"],
      classes: [1, 4, 7],
      targets: ["label"],
    });
    // The file loads, and on raw feature values (standardisation folded in) it predicts the labels.
    const m = Model.load(new Uint8Array(readFileSync(join(dir, "three.safetensors"))));
    expect([m.inputs, m.outputs]).toEqual([3, 3]);
    const rows = readFileSync(csv, "utf8")
      .trim()
      .split("\n")
      .slice(1)
      .map((l) => l.split(",").map(Number));
    const x = Float32Array.from(rows.flatMap((v) => v.slice(0, 3)));
    const { d } = m.forward(x);
    let right = 0;
    rows.forEach((v, k) => {
      const p = [0, 1, 2].reduce((b, c) => (d[k * 3 + c] > d[k * 3 + b] ? c : b), 0);
      if ([1, 4, 7][p] === v[5]) right++;
    });
    expect(right / rows.length).toBeGreaterThan(0.85);
    expect(Array.from(m.g).every((v) => v === 0)).toBe(true);
    m.dispose();
  });

  it("train: a 0/1 column is one output; the entropy objective needs no target", async () => {
    writeCsv(join(dir, "flag.csv"), 200);
    const r = await run([
      "train",
      "flag.csv",
      "--target",
      "flag",
      "--features",
      "0..3",
      "--epochs",
      "3",
      "--optimizer",
      "adam",
      "-o",
      "flag.safetensors",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/trained 1 output on 4 features/);
    const flag = Model.load(new Uint8Array(readFileSync(join(dir, "flag.safetensors"))));
    expect([flag.inputs, flag.outputs]).toEqual([4, 1]);
    flag.dispose();
    const u = await run([
      "train",
      "flag.csv",
      "--objective",
      "entropy",
      "--features",
      "a,b",
      "--epochs",
      "2",
      "-o",
      "h.safetensors",
    ]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/accuracy\s+train n\/a, test n\/a/);
    expect(existsSync(join(dir, "h.safetensors"))).toBe(true);
  });

  it("train: mistakes in the data or the options fail with one line and exit code 1", async () => {
    writeFileSync(join(dir, "bad.csv"), "x,y\n1,2\n3,oops\n");
    writeFileSync(join(dir, "ragged.csv"), "x,y\n1,2\n3\n");
    writeFileSync(join(dir, "ok.csv"), "x,y,t\n1,2,0.5\n3,4,1.5\n5,6,0.25\n");
    const cases: [string[], RegExp][] = [
      [["train", "nope.csv"], /^entrograd: cannot read nope\.csv/],
      [["train", "bad.csv"], /row 3, column "y": "oops" is not a number/],
      [["train", "ragged.csv"], /row 3 has 1 fields, expected 2/],
      [["train", "ok.csv", "--target", "zz"], /--target: no column "zz"/],
      [["train", "ok.csv", "--target", "t"], /target "t": 3 distinct non-integer values/],
      [["train", "ok.csv", "--target", "t", "--features", "x,t"], /"t" is both a feature and a target/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
    const lr = await run(["train", "ok.csv", "--lr", "-1"]);
    expect(lr.code).not.toBe(0);
    expect(lr.stderr).toMatch(/--lr/);
  });

  it("bench: an installed copy (no bench/) does not offer it, and says why when asked", async () => {
    // A copy of the package as npm installs it: dist/ and package.json (scripts included, as
    // npm keeps them) but no bench/; node_modules linked for commander and cli-progress.
    const pkgDir = join(dir, "installed");
    cpSync(join(root, "dist"), join(pkgDir, "dist"), { recursive: true });
    cpSync(join(root, "package.json"), join(pkgDir, "package.json"));
    symlinkSync(join(root, "node_modules"), join(pkgDir, "node_modules"), "dir");
    const script = join(pkgDir, "dist", "cli.js");
    const help = await run(["--help"], { script });
    expect(help.code).toBe(0);
    for (const c of ["demo", "train", "info"]) expect(help.stdout).toMatch(new RegExp(`^ {2}${c}\\b`, "m"));
    expect(help.stdout).not.toMatch(/^ {2}bench\b/m);
    const r = await run(["bench"], { script });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^entrograd: bench needs the repository: the benchmark \(bench\/\) .* not part of the installed package/,
    );
    expect(r.stderr).toMatch(/npm run bench -- --quick/);
    // In the clone, --help lists it.
    expect((await run(["--help"])).stdout).toMatch(/^ {2}bench\b/m);
  });
});
