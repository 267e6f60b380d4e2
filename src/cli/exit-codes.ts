import type { ErrorCode } from "../observe/index.ts";

/** Exit codes by error class, documented in README ("Exit codes"). Stable: scripts test them. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  network: 5,
  integrity: 6,
  diskFull: 7,
  interrupted: 130,
  /** 128 + SIGPIPE, what a shell reports for `cat` whose reader went away. */
  outputClosed: 141,
} as const;

const TABLE: Partial<Record<ErrorCode, number>> = {
  FERRY_INVALID_REFERENCE: ExitCode.usage,
  FERRY_INVALID_ARGUMENT: ExitCode.usage,
  FERRY_INVALID_DIGEST: ExitCode.usage,
  FERRY_UNSUPPORTED_DIGEST: ExitCode.usage,
  FERRY_NO_MATCHING_PLATFORM: ExitCode.notFound,
  FERRY_NAME_UNKNOWN: ExitCode.notFound,
  FERRY_MANIFEST_UNKNOWN: ExitCode.notFound,
  FERRY_BLOB_UNKNOWN: ExitCode.notFound,
  FERRY_IMAGE_NOT_FOUND: ExitCode.notFound,
  FERRY_AUTH_REQUIRED: ExitCode.auth,
  FERRY_AUTH_REJECTED: ExitCode.auth,
  FERRY_DENIED: ExitCode.auth,
  FERRY_UNREACHABLE: ExitCode.network,
  FERRY_TIMEOUT: ExitCode.network,
  FERRY_TLS: ExitCode.network,
  FERRY_ADDRESS_REFUSED: ExitCode.network,
  FERRY_TOO_MANY_REQUESTS: ExitCode.network,
  FERRY_REGISTRY_UNAVAILABLE: ExitCode.network,
  FERRY_DIGEST_MISMATCH: ExitCode.integrity,
  FERRY_SIZE_MISMATCH: ExitCode.integrity,
  FERRY_STORE_CORRUPT: ExitCode.integrity,
  FERRY_INVALID_MANIFEST: ExitCode.integrity,
  FERRY_ARCHIVE_INVALID: ExitCode.integrity,
  FERRY_DISK_FULL: ExitCode.diskFull,
  FERRY_CONFIG_INVALID: ExitCode.usage,
  FERRY_CONFIG_NOT_FOUND: ExitCode.usage,
  FERRY_CREDENTIAL_HELPER: ExitCode.auth,
  FERRY_RUNTIME_UNAVAILABLE: ExitCode.network,
  FERRY_RUNTIME_PULL_FAILED: ExitCode.failure,
  FERRY_INTERRUPTED: ExitCode.interrupted,
  FERRY_OUTPUT_CLOSED: ExitCode.outputClosed,
};

export function exitCodeFor(code: ErrorCode): number {
  return TABLE[code] ?? ExitCode.failure;
}
