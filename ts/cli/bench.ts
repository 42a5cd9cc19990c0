// `entrograd bench`: the quick benchmark, where this copy of entrograd has one: a clone of the
// repository, with bench/ and its npm "bench" script. The published package ships neither bench/
// nor the benchmark's development dependencies (TensorFlow.js, tinybench), so an installed
// `entrograd` does not offer the command (it is hidden from --help) and explains why if asked.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CliError } from "./errors.js";

/** Whether `root` (the package's folder) is a clone of the repository that can run the benchmark. */
export function benchAvailable(root: string): boolean {
  let scripts: Record<string, unknown> = {};
  try {
    scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts ?? {};
  } catch {
    return false;
  }
  return existsSync(join(root, "bench", "run.mjs")) && typeof scripts.bench === "string";
}

const BENCH_UNAVAILABLE =
  "bench needs the repository: the benchmark (bench/) and its development dependencies (TensorFlow.js, tinybench) " +
  "are not part of the installed package. In a clone of the entrograd repository, run `npm run bench -- --quick` " +
  "(or `node dist/cli.js bench`).";

export function bench(root: string, extra: string[]): number {
  if (!benchAvailable(root)) throw new CliError(BENCH_UNAVAILABLE);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["run", "--silent", "bench", "--", "--quick", ...extra], { cwd: root, stdio: "inherit" });
  if (r.error) throw new CliError(`cannot run npm: ${r.error.message}`);
  return r.status ?? 1;
}
