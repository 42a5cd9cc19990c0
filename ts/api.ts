// Everything the package exports apart from loading, shared by every entry.

export { EntrogradError, type ErrorCode } from "./errors.js";
export { Model, type ModelOptions, type FromOptions, type ForwardResult, type GradientsResult, type StepResult } from "./model.js";
export { SGD, type SGDOptions, type SGDGroup, type SGDStateDict, type ParamName } from "./optim/sgd.js";
export type { Objective, LossOptions, Reduction, AdaptOptions } from "./options.js";
export { Adapter, type AdapterOptions, type AdaptableOptimizer } from "./adapt/adapter.js";
export { AdaptStepResult } from "./adapt/result.js";
export type { InitName } from "./rng.js";
export type { BackendName } from "./core/types.js";
export { backend, memoryBytes } from "./core/registry.js";
export { entropyBits, sigmoid } from "./js/entropy.js";
