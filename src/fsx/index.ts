/** Files: whole-file atomic writes with fsyncs, cross-process locks that work on a full disk, temp names. */
export {
  type AtomicWriteOptions,
  fsyncDir,
  isNoSpace,
  TEMP_NAME,
  tempPathFor,
  writeFileAtomic,
  writeStreamAtomic,
} from "./atomic.ts";
export {
  acquireLock,
  isLockHeld,
  type Lock,
  type LockOptions,
  type LockOwner,
  STALE_ASIDE,
} from "./lock.ts";
export { isProcessAlive } from "./process.ts";
export { uniqueHex } from "./unique.ts";
