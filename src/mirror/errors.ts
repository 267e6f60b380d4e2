import type { ServerResponse } from "node:http";
import { FerryError, isFerryError } from "../observe/index.ts";

/** An error in the distribution spec's format; it knows its status and renders itself. */
export class DistributionError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { detail?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  write(res: ServerResponse, method: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({
      errors: [{ code: this.code, message: this.message, detail: this.detail ?? null }],
    });
    res.writeHead(this.status, {
      ...this.headers,
      "content-type": "application/json; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
      "docker-distribution-api-version": "registry/2.0",
    });
    res.end(method === "HEAD" ? undefined : body);
  }
}

/** Failures of the upstream itself, as opposed to answers about the content (not found, denied). */
export function isUpstreamFailure(err: unknown): boolean {
  return (
    isFerryError(err) &&
    [
      "FERRY_UNREACHABLE",
      "FERRY_TIMEOUT",
      "FERRY_TLS",
      "FERRY_REGISTRY_UNAVAILABLE",
      "FERRY_TOO_MANY_REQUESTS",
      "FERRY_REGISTRY_ERROR",
    ].includes(err.code)
  );
}

export function toDistributionError(err: unknown): DistributionError {
  if (err instanceof DistributionError) return err;
  if (!(err instanceof FerryError)) return new DistributionError(500, "UNKNOWN", "internal error");
  const detail = { upstream: err.message };
  switch (err.code) {
    case "FERRY_MANIFEST_UNKNOWN":
      return new DistributionError(404, "MANIFEST_UNKNOWN", "manifest unknown", { detail });
    case "FERRY_NAME_UNKNOWN":
      return new DistributionError(404, "NAME_UNKNOWN", "repository name not known to registry", {
        detail,
      });
    case "FERRY_BLOB_UNKNOWN":
      return new DistributionError(404, "BLOB_UNKNOWN", "blob unknown to registry", { detail });
    case "FERRY_AUTH_REQUIRED":
    case "FERRY_AUTH_REJECTED":
    case "FERRY_DENIED":
      return new DistributionError(
        403,
        "DENIED",
        "the mirror may not read this repository upstream",
        { detail },
      );
    case "FERRY_ADDRESS_REFUSED":
      return new DistributionError(403, "DENIED", "the mirror does not connect to that address", {
        detail,
      });
    case "FERRY_TOO_MANY_REQUESTS":
      return new DistributionError(429, "TOOMANYREQUESTS", "upstream rate limit", { detail });
    case "FERRY_INVALID_REFERENCE":
      return new DistributionError(400, "NAME_INVALID", err.message);
    case "FERRY_DISK_FULL":
      return new DistributionError(503, "UNAVAILABLE", "the mirror's store is full", { detail });
    case "FERRY_DIGEST_MISMATCH":
    case "FERRY_SIZE_MISMATCH":
      return new DistributionError(
        502,
        "UNKNOWN",
        "upstream served content that does not match its digest",
        { detail },
      );
    default:
      return new DistributionError(503, "UNAVAILABLE", "upstream unavailable", { detail });
  }
}
