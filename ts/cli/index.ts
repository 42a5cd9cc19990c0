// The `entrograd` command (package.json "bin" → dist/cli.js). A separate entry from the
// library: commander and cli-progress are the CLI's alone, and the library never imports them.
// It uses the library through ../index.js, which the build keeps as an import of the
// package's own dist/index.js.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError, Option } from "commander";
import { EntrogradError, init, type BackendName } from "../index.js";
import { bench, benchAvailable } from "./bench.js";
import { CONDITIONS, formatResult, runDemo, settings, type Condition } from "./demo.js";
import { formatStudy, runStudy } from "./study.js";
import { CliError } from "./errors.js";
import { formatInfo, info } from "./info.js";
import { plotSvg } from "./plot.js";
import { progressBar } from "./progress.js";
import { train } from "./train.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const version = (() => {
  try {
    return JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version as string;
  } catch {
    return "unknown";
  }
})();

const BACKENDS = ["auto", "wasm-simd", "wasm", "js"] as const;

function whole(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number ≥ ${min}`);
    return n;
  };
}
function positive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a number > 0");
  return n;
}
function nonNegative(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number ≥ 0");
  return n;
}
function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError("expected a number in [0, 1)");
  return n;
}
const backendOption = () =>
  new Option("--backend <name>", "backend: auto, wasm-simd, wasm or js").choices(BACKENDS).default("auto");

const program = new Command()
  .name("entrograd")
  .description("Entropy-regularised sigmoid layers in WebAssembly: test-time adaptation demo, training, info")
  .version(version)
  .showHelpAfterError();

program
  .command("demo")
  .description(
    "test-time adaptation on the optical digits: train W with cross-entropy, shift the test split, adapt on the " +
      "unlabelled shifted images with the recommended setting (and plain entropy minimisation); print accuracy and " +
      "entropy against no adaptation. --study: the study that chose the setting",
  )
  .option("--quick", "2 seeds and fewer epochs (a few seconds)")
  .option("--study", "the full study: every method, hyper-parameters chosen on seeds 1-3, reported on the others")
  .option("--seeds <n>", "number of reported seeds, from 4 on (default 5, or 2 with --quick)", whole(1))
  .option("--plot <file.svg>", "write a chart of accuracy and entropy over the adaptation steps (first seed)")
  .addOption(
    new Option("--plot-shift <name>", "the test condition the chart shows").choices(CONDITIONS).default("contrast"),
  )
  .option("--json <file>", "write every score as JSON")
  .option("--data <file.csv>", "the digits CSV (default: data/digits.csv of the package)")
  .addOption(backendOption())
  .option("--no-progress", "no progress bar (it is shown only when stderr is a terminal anyway)")
  .action(async (o) => {
    await init();
    const s = settings(Boolean(o.quick));
    if (o.seeds !== undefined) s.seeds = Array.from({ length: o.seeds }, (_, i) => i + 1 + s.selectionSeeds.length);
    s.backend = o.backend as BackendName | "auto";
    s.data = o.data;
    if (o.study) {
      if (o.plot !== undefined) throw new CliError("--plot draws the demo's runs; it does not go with --study");
      const r = await runStudy(s, progressBar(o.progress));
      process.stdout.write(`${formatStudy(r)}\n`);
      if (o.json !== undefined) {
        writeFileSync(o.json, `${JSON.stringify(r, null, 2)}\n`);
        process.stderr.write(`wrote ${o.json}\n`);
      }
      return;
    }
    s.trace = o.plot !== undefined ? (o.plotShift as Condition) : null;
    const r = await runDemo(s, progressBar(o.progress));
    process.stdout.write(`${formatResult(r)}\n`);
    if (o.plot !== undefined) {
      const what =
        o.plotShift === "clean"
          ? "clean test split"
          : o.plotShift === "all"
            ? "combined shift (translate + contrast + noise)"
            : o.plotShift === "label"
              ? "label shift"
              : `${o.plotShift} shift`;
      writeFileSync(
        o.plot,
        plotSvg(r.traces, `entrograd demo: adapting on the ${what}, seed ${s.seeds[0]}, backend ${r.backend}`),
      );
      process.stderr.write(`wrote ${o.plot}\n`);
    }
    if (o.json !== undefined) {
      writeFileSync(o.json, `${JSON.stringify(r, null, 2)}\n`);
      process.stderr.write(`wrote ${o.json}\n`);
    }
  });

program
  .command("train")
  .description("fit one sigmoid layer to a numeric CSV and write it as a safetensors file")
  .argument("<data.csv>", "comma-separated numbers, optionally with a header row")
  .option("--target <columns>", "target column(s): names, 0-based indices or ranges i..j; default: the last column")
  .option("--features <columns>", "feature columns (same syntax); default: every column that is not a target")
  .addOption(
    new Option("--objective <name>", "cross-entropy against the targets, or entropy (no targets)")
      .choices(["cross-entropy", "entropy"])
      .default("cross-entropy"),
  )
  .option("--entropy-weight <w>", "add this much entropy to the cross-entropy", nonNegative, 0)
  .addOption(new Option("--optimizer <name>", "sgd or adam").choices(["sgd", "adam"]).default("sgd"))
  .option("--lr <rate>", "learning rate (default 0.05 for sgd, 0.01 for adam)", positive)
  .option("--momentum <m>", "SGD momentum", nonNegative, 0.9)
  .option("--epochs <n>", "passes over the training rows", whole(1), 20)
  .option("--batch-size <n>", "rows per step", whole(1), 32)
  .option(
    "--test-fraction <f>",
    "rows held out for the reported test accuracy (default 0.2 with targets, else 0)",
    fraction,
  )
  .option("--seed <n>", "seed of the initialisation, the split and the batch order", whole(0), 0)
  .option("-o, --output <file>", "where to write the model", "model.safetensors")
  .addOption(backendOption())
  .option("--no-progress", "no progress bar")
  .action(async (file: string, o) => {
    await init();
    const r = train(
      {
        file,
        target: o.target,
        features: o.features,
        objective: o.objective,
        entropyWeight: o.entropyWeight,
        optimizer: o.optimizer,
        lr: o.lr,
        momentum: o.momentum,
        epochs: o.epochs,
        batchSize: o.batchSize,
        backend: o.backend,
        seed: o.seed,
        testFraction: o.testFraction,
        output: o.output,
      },
      progressBar(o.progress),
    );
    const pct = (v: number | null) => (v === null ? "n/a" : `${(100 * v).toFixed(1)}%`);
    process.stdout.write(
      [
        `trained ${r.outputs} output${r.outputs > 1 ? "s" : ""} on ${r.features.length} features, ${r.trainRows} rows (${r.testRows} held out), backend ${r.backend}`,
        r.classes
          ? `classes      ${r.classes.join(", ")} (one-hot, prediction = argmax)`
          : `targets      ${r.targets.join(", ") || "none"}`,
        `loss         ${r.losses[0].toFixed(4)} → ${r.losses[r.losses.length - 1].toFixed(4)} bits per row`,
        `accuracy     train ${pct(r.trainAccuracy)}, test ${pct(r.testAccuracy)}`,
        `wrote        ${r.output} (safetensors: w, g, b; takes raw feature values) and ${r.meta}`,
        `time         ${r.seconds.toFixed(1)} s`,
        "",
      ].join("\n"),
    );
  });

// Offered only in a clone of the repository; an installed package has no bench/ (see bench.ts).
program
  .command("bench", { hidden: !benchAvailable(root) })
  .description("the quick benchmark (in a clone of the repository: bench/ and its npm script)")
  .allowUnknownOption()
  .argument("[args...]", "passed on to the benchmark")
  .action((args: string[]) => {
    process.exitCode = bench(root, args);
  });

program
  .command("info")
  .description("runtime, available backends, WebAssembly SIMD")
  .option("--json", "print as JSON")
  .action(async (o) => {
    const i = await info(version);
    process.stdout.write(`${o.json ? JSON.stringify(i, null, 2) : formatInfo(i)}\n`);
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CliError || e instanceof EntrogradError) {
    process.stderr.write(`entrograd: ${e.message}\n`);
    process.exitCode = 1;
  } else {
    throw e;
  }
});
