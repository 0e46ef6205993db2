// The Hub layer's public surface: pulling a model into the shared Hugging Face cache and resolving
// `--model` to a directory.

export { pullModel, type PullOptions, type PullResult, type PulledFile } from "./pull.js";
export { createProgressReporter, type ProgressReporter, type ProgressReporterOptions, type PullProgressEvent } from "./progress.js";
export {
  ensureModel,
  formatPullCommand,
  ModelNotFoundError,
  resolveModelReference,
  type EnsureModelOptions,
  type ModelReference,
  type ResolveModelOptions,
} from "./model-ref.js";
export { resolveCacheDir } from "./cache.js";
export { HubRequestError } from "./http.js";
export { defaultEndpoint, defaultRepo, defaultRevision } from "./settings.js";
