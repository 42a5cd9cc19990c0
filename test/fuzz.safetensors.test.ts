// The safetensors fuzzer (test/fuzz/safetensors.mjs) for a bounded time in the test run:
// mutated files (havoc and header edits) through Model.load and Optimizer#load, checked against
// an independent reading of the format. Longer runs: `npm run fuzz -- --seconds 600`.
// Inputs that once failed live in test/fuzz/corpus/ and seed every run.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as pkg from "entrograd";
// @ts-expect-error: a plain ES module without types
import { fuzzSafetensors } from "./fuzz/safetensors.mjs";

const SECONDS = Number(process.env.ENTROGRAD_FUZZ_SECONDS ?? 4);
const corpusDir = new URL("./fuzz/corpus/safetensors/", import.meta.url);

function corpus(): Uint8Array[] {
  try {
    return readdirSync(corpusDir)
      .filter((f) => f.endsWith(".b64"))
      .map((f) => new Uint8Array(Buffer.from(readFileSync(new URL(f, corpusDir), "utf8").trim(), "base64")));
  } catch {
    return [];
  }
}

describe("fuzzing the safetensors parser", () => {
  for (const backend of ["js", "wasm-simd"] as const)
    it(`Model.load / Optimizer#load on ${backend}: only FORMAT errors, exactly the valid files accepted (${SECONDS / 2} s)`, async () => {
      const stats = await fuzzSafetensors(pkg, {
        seconds: SECONDS / 2,
        seed: backend === "js" ? 2026 : 2027,
        corpus: corpus(),
        backend,
      });
      expect(stats.cases).toBeGreaterThan(100);
      expect(stats.accepted).toBeGreaterThan(0);
      expect(stats.rejected).toBeGreaterThan(0);
      console.log(`fuzz safetensors (${backend}): ${JSON.stringify(stats)}`);
    }, 60_000);
});
