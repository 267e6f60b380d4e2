export { diskError, fsyncDir, isProcessAlive, tempPathFor, writeFileAtomic } from "./atomic.ts";
export { acquireLock, type Lock, type LockOptions } from "./lock.ts";
export {
  defaultStoreRoot,
  FerryAnnotation,
  type ImageRecord,
  OCI_LAYOUT_VERSION,
  Store,
} from "./store.ts";
