/**
 * Typed errors. Every failure a user can meet is a FerryError with a stable
 * `code` (tested on, never the message), a human `hint` saying what to do, and
 * structured `fields`. Only `cli/` turns them into text and exit codes.
 */
export type ErrorCode =
  | "FERRY_INVALID_REFERENCE"
  | "FERRY_INVALID_ARGUMENT"
  | "FERRY_INVALID_DIGEST"
  | "FERRY_UNSUPPORTED_DIGEST"
  | "FERRY_DIGEST_MISMATCH"
  | "FERRY_SIZE_MISMATCH"
  | "FERRY_NAME_UNKNOWN"
  | "FERRY_MANIFEST_UNKNOWN"
  | "FERRY_BLOB_UNKNOWN"
  | "FERRY_UNSUPPORTED_MANIFEST"
  | "FERRY_INVALID_MANIFEST"
  | "FERRY_NO_MATCHING_PLATFORM"
  | "FERRY_AUTH_REQUIRED"
  | "FERRY_AUTH_REJECTED"
  | "FERRY_DENIED"
  | "FERRY_TOO_MANY_REQUESTS"
  | "FERRY_REGISTRY_UNAVAILABLE"
  | "FERRY_REGISTRY_ERROR"
  | "FERRY_UNREACHABLE"
  | "FERRY_TLS"
  | "FERRY_ADDRESS_REFUSED"
  | "FERRY_TIMEOUT"
  | "FERRY_DISK_FULL"
  | "FERRY_STORE_IO"
  | "FERRY_STORE_CORRUPT"
  | "FERRY_STORE_LOCKED"
  | "FERRY_IMAGE_NOT_FOUND"
  | "FERRY_ARCHIVE_INVALID"
  | "FERRY_CONFIG_INVALID"
  | "FERRY_CONFIG_NOT_FOUND"
  | "FERRY_CONFIG_LOCKED"
  | "FERRY_CREDENTIAL_HELPER"
  | "FERRY_RUNTIME_UNAVAILABLE"
  | "FERRY_RUNTIME_PULL_FAILED"
  | "FERRY_RUNTIME_ERROR"
  | "FERRY_INTERRUPTED"
  | "FERRY_OUTPUT_CLOSED"
  | "FERRY_INTERNAL";

export interface FerryErrorOptions {
  hint?: string;
  fields?: Record<string, unknown>;
  cause?: unknown;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly fields: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FerryError";
    this.code = code;
    this.hint = options.hint;
    this.fields = options.fields ?? {};
  }
}

export function isFerryError(err: unknown, code?: ErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}
