// The overflow rule shared by every backend (docs/api.md, "Overflow"): a sum that overflows
// float32 partway while its result fits does not fail a call. The JS kernels sum in float64 and
// round once; the WebAssembly cores sum in float32, so when one of them reports a non-finite
// result (status 4) the model runs the call again here, with the JS kernels on the same memory.
// The outcome of such a call is then the JS backend's on every backend, by construction; calls
// that succeed in the core never come here.

import { Status } from "./abi.js";
import { jsCore } from "./js-core.js";
import type { Call, Frame, Rules, RuleSnapshot } from "./types.js";

/**
 * Runs `call` on `frame` with the JS kernels: the frame's views (in a WebAssembly memory) are
 * read and written in place; `snapshot` holds what the optimizer wrote into `rules` (options and
 * counters; the optimizer advances its counters itself after a successful step). Returns the
 * status. Nothing was written by the core's failed call (it checks before it writes), so
 * nothing needs undoing.
 */
export function rerunExactly(call: Call, frame: Frame, rules: Rules | null, snapshot: RuleSnapshot | null): number {
  if (rules !== null && snapshot === null) return Status.NonFiniteResult;
  // The JS kernels' scratch (W + G, and the weight gradient's transposes) on the JS heap.
  const floats = jsCore.packFloats(frame.batch, frame.inputs, frame.outputs);
  const scratch = jsCore.allocate(floats);
  if (scratch === null) return Status.NonFiniteResult;
  let js: Rules | null = null;
  if (rules !== null && snapshot !== null) {
    js = jsCore.createRules() as Rules;
    js.maxGradNorm = rules.maxGradNorm;
    for (let i = 0; i < 3; i++) {
      js.set(i, snapshot.options[i]);
      js.setProgress(i, snapshot.progress[i].ready, snapshot.progress[i].steps);
    }
  }
  const { cache, views } = frame;
  frame.cache = null;
  frame.views = { ...views, pack: jsCore.view(scratch, 0, floats) };
  try {
    return jsCore.run(call, frame, js);
  } finally {
    frame.cache = cache;
    frame.views = views;
  }
}
