// The peak this engine reaches on f32x4 arithmetic, measured in the bench's own process: a
// register-resident loop of f32x4.mul + f32x4.add over K independent accumulators, written in
// WebAssembly text below and assembled with binaryen's wasm-as (a devDependency) at bench time.
//
// Each iteration does acc_k = acc_k·m + c for k < K (2 flops per lane: 8 per accumulator). With
// m = c = 0.5 every lane converges to 1, so no value overflows or turns subnormal. The chains are
// independent: with enough of them the loop is bound by the multiply and add pipes, not by
// latency; with too many the engine spills them to memory. The bench runs several K and takes
// the best as "the peak" (see docs/performance.md).

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ACCUMULATORS = [8, 10, 12, 14];

/**
 * The WebAssembly text of the kernel with k accumulators: export "peak" (iterations) -> f32.
 * @param {number} k
 */
export function peakWat(k) {
  const accs = Array.from({ length: k }, (_, i) => `$a${i}`);
  const init = accs.map((a, i) => `    (local.set ${a} (f32x4.splat (f32.const ${i + 1})))`).join("\n");
  const body = accs
    .map((a) => `      (local.set ${a} (f32x4.add (f32x4.mul (local.get ${a}) (local.get $m)) (local.get $c)))`)
    .join("\n");
  // Fold every accumulator into the result so nothing is dead code.
  let sum = "(local.get $a0)";
  for (let i = 1; i < k; i++) sum = `(f32x4.add ${sum} (local.get $a${i}))`;
  return `(module
  (func (export "peak") (param $n i32) (param $ms f32) (param $cs f32) (result f32)
    (local $m v128) (local $c v128) (local $s v128)
    ${accs.map((a) => `(local ${a} v128)`).join(" ")}
    (local.set $m (f32x4.splat (local.get $ms)))
    (local.set $c (f32x4.splat (local.get $cs)))
${init}
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
${body}
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.set $s ${sum})
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $s)) (f32x4.extract_lane 1 (local.get $s)))
             (f32.add (f32x4.extract_lane 2 (local.get $s)) (f32x4.extract_lane 3 (local.get $s))))))
`;
}

const wasmAs = fileURLToPath(new URL("../node_modules/.bin/wasm-as", import.meta.url));

/**
 * A peak kernel: (iterations, m, c) -> the folded accumulators.
 * @typedef {(iterations: number, m: number, c: number) => number} PeakFn
 */

/**
 * Assembles the kernels with binaryen's wasm-as; returns { k, peak(iterations) } for each K.
 * @returns {{ k: number; bytes: number; peak: PeakFn; flopsPerIteration: number }[]}
 */
export function peakKernels(ks = ACCUMULATORS) {
  const dir = mkdtempSync(join(tmpdir(), "entrograd-peak-"));
  try {
    return ks.map((k) => {
      const wat = join(dir, `peak${k}.wat`),
        wasm = join(dir, `peak${k}.wasm`);
      writeFileSync(wat, peakWat(k));
      execFileSync(wasmAs, ["--enable-simd", wat, "-o", wasm], { stdio: ["ignore", "ignore", "inherit"] });
      const bytes = readFileSync(wasm);
      const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
      return { k, bytes: bytes.length, peak: /** @type {PeakFn} */ (exports.peak), flopsPerIteration: 8 * k };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
