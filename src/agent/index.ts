/** The pre-pull agent: image lists, warm/check/bootstrap, schedule, webhooks, readiness, status. */
export type { ImageEntry, ImageList, WarmFunction, WarmResult, WarmState } from "./types.ts";
export {
  entriesFromReferences,
  loadImageList,
  parseImageList,
} from "./image-list.ts";
export { createStoreTarget, type StoreTargetOptions } from "./store-target.ts";
export {
  type CheckOptions,
  createCheckFunction,
  createWarmFunction,
  DEFAULT_WARM_CONCURRENCY,
  DEFAULT_WARM_RETRIES,
  isTransientWarmError,
  type WarmOptions,
} from "./warm.ts";
export {
  type BootstrapEvent,
  type BootstrapOptions,
  type BootstrapOutcome,
  notifySystemdReady,
  type ReadyHook,
  readyFileHook,
  runBootstrap,
  type SystemdNotifyResult,
  type UnavailableTarget,
} from "./bootstrap.ts";
export {
  type BackoffPolicy,
  backoffPolicy,
  OPTIONAL_IMAGE_BACKOFF,
  REQUIRED_IMAGE_BACKOFF,
  WEBHOOK_IMAGE_ATTEMPTS,
} from "./backoff.ts";
export {
  type AgentSettings,
  type KubernetesSettings,
  type RetrySettings,
  loadAgentSettings,
  parseAgentSettings,
} from "./agent-config.ts";
export { type AgentOptions, type OpenedTargets, runAgent, type TargetHooks } from "./daemon.ts";
export { validateCron } from "./schedule.ts";
export { contentHash, type ListWatch, watchList } from "./list-watch.ts";
export { normalizePrefix, WEBHOOK_KINDS } from "./webhooks.ts";
export { MeteredPuller } from "./metered-puller.ts";
