/** The transfer engine: verified, resumable, single-flight blob fetches; copy and push. */
export type { BlobStatus, PullEvent, PullSummary } from "./events.ts";
export {
  type AttemptLocation,
  type BlobLocator,
  type BlobSourceLocation,
  SourcePicker,
} from "./blob-locator.ts";
export { Limiter } from "./limiter.ts";
export { SinkPool } from "./sink-pool.ts";
export { DEFAULT_CONCURRENCY, Puller, type PullerOptions, type PullOptions } from "./puller.ts";
export { type TransferJob, type TransferResult, transferBlob } from "./transfer.ts";
export { explainPullError } from "./explain.ts";
export type { CopyBlobStatus, CopyEvent, CopySummary } from "./copy-events.ts";
export {
  Copier,
  type CopierOptions,
  type CopyOptions,
  formatPlace,
  type Place,
  parsePlace,
  STORE_PREFIX,
} from "./copy.ts";
