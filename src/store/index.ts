/** The on-disk OCI image layout: verified ingest, index, pins, leases, locks, GC, disk pressure. */
export { diskError, writeFileAtomic } from "./atomic.ts";
export {
  type CorruptBlob,
  checkStore,
  type FsckReport,
  type MissingBlob,
  quarantineDir,
} from "./fsck.ts";
export { measureFilesystem, type PruneOptions, type PruneReport, prune } from "./gc.ts";
export { type BlobSink, LocalSink } from "./blob-sink.ts";
export { type IngestOptions, IngestWriter } from "./ingest.ts";
export { UnnamedIngest } from "./ingest-unnamed.ts";
export { OCI_LAYOUT_VERSION } from "./layout.ts";
export { Lease, type LeaseRecord } from "./lease.ts";
export { acquireLock, type LockOptions } from "./lock.ts";
export {
  DEFAULT_RETENTION,
  decidePolicy,
  type FilesystemUsage,
  type PolicyDecision,
  type RetentionPolicy,
  validatePolicy,
} from "./policy.ts";
export {
  type ImageNode,
  type ImageUsage,
  imageUsage,
  type PrunePlan,
  type PruneRule,
  planPrune,
  pruneRule,
  type RemovedImage,
  type StoreGraph,
} from "./prune-plan.ts";
export { type DiskCondition, DiskPressure } from "./pressure.ts";
export { parseDuration, parsePercent, parseSize } from "./quantity.ts";
export { defaultStoreRoot, FerryAnnotation, type ImageRecord, Store } from "./store.ts";
export { type DiskUsage, diskUsage, type ImageDiskUsage } from "./usage.ts";
export { BlobFileSource, StoreSource } from "./source.ts";
