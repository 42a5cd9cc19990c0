// entrograd/js: the pure-JS fallback alone, no WebAssembly at all. Models get backend "js".

import type { BackendName } from "../core/types.js";

export * from "../api.js";
export { forward, sumWeights } from "./forward.js";
export { objective } from "./objective.js";
export { adapt, entropyOfMean, type AdaptArgs } from "./adapt.js";
export { weightGradient, biasGradient } from "./gradients.js";
export { sgdUpdate, type Rule } from "./sgd.js";
export { adamUpdate, adamScalars, powU32 } from "./adam.js";
export { sumSquares, clipCoefficient, scale } from "./clip.js";
export { step, forwardCall, entropyCall, gradientsCall, type Args } from "./step.js";

/** Nothing to load: resolves to "js". */
export async function init(): Promise<BackendName> {
  return "js";
}

export function initSync(): BackendName {
  return "js";
}
