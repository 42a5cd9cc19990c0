// `entrograd bench`: the quick benchmark, when this copy of entrograd has one (bench/ and an
// npm "bench" script, as in a clone of the repository). The published package has none.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CliError } from "./errors.js";

export function bench(root: string, extra: string[]): number {
  let scripts: Record<string, string> = {};
  try {
    scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts ?? {};
  } catch {
    // no package.json: no bench
  }
  if (!existsSync(join(root, "bench")) || typeof scripts.bench !== "string") {
    throw new CliError(
      "bench is not available in this copy of entrograd: it needs the repository's bench/ directory and its " +
        '"bench" npm script (a clone of the repository, not the published package)',
    );
  }
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["run", "--silent", "bench", "--", "--quick", ...extra], { cwd: root, stdio: "inherit" });
  if (r.error) throw new CliError(`cannot run npm: ${r.error.message}`);
  return r.status ?? 1;
}
