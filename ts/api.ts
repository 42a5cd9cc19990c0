// Everything the package exports apart from loading, shared by every entry.

export { EntrogradError, type ErrorCode } from "./errors.js";
export {
  Model,
  type ModelOptions,
  type FromOptions,
  type ForwardResult,
  type GradientsResult,
  type StepResult,
  type InputStats,
} from "./model.js";
export { SGD, type SGDOptions, type SGDGroup, type SGDStateDict } from "./optim/sgd.js";
export { Adam, AdamW, type AdamOptions, type AdamGroup, type AdamStateDict } from "./optim/adam.js";
export {
  Optimizer,
  type ParamName,
  type BaseOptions,
  type GroupOptions,
  type OptimizerStateDict,
  type StateEntry,
} from "./optim/optimizer.js";
export {
  LRScheduler,
  StepLR,
  ExponentialLR,
  CosineAnnealingLR,
  LinearLR,
  SequentialLR,
  type SchedulerStateDict,
} from "./optim/schedulers.js";
export type { Objective, LossOptions, Reduction, AdaptOptions } from "./options.js";
export { Adapter, type AdapterOptions, type AdaptableOptimizer, type EntropyThreshold } from "./adapt/adapter.js";
export type { StatsMode } from "./adapt/stats.js";
export { AdaptStepResult } from "./adapt/result.js";
export { fit, type FitOptions, type FitHistory, type BatchInfo, type EpochInfo } from "./fit.js";
export type { InitName } from "./rng.js";
export type { BackendName } from "./core/types.js";
export { backend, memoryBytes, threads, threadInfo, stopThreads, type ThreadInfo } from "./core/registry.js";
export { entropyBits, sigmoid } from "./kernels/entropy.js";
