import { FerryError, isFerryError } from "../observe/index.ts";
import {
  type BlobReadResult,
  type AddressGuard,
  type BlobResponseHead,
  classify,
  parseErrorBody,
  readBlob,
  type TlsSettings,
} from "../registry/index.ts";
import type { IngestWriter } from "../store/index.ts";

/** Where to fetch one blob from. */
export interface TransferJob {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly tls?: TlsSettings | undefined;
  /** For error messages: registry host and repository. */
  readonly host: string;
  readonly repository: string;
  /** No bytes for this long fails the attempt (FERRY_TIMEOUT); the reader's default otherwise. */
  readonly idleTimeoutMs?: number;
  /** Where the connections may go (the registry client's guard). */
  readonly guard?: AddressGuard | undefined;
}

export type TransferResult =
  | { readonly kind: "complete"; readonly fetched: number; readonly resumedFrom: number }
  /** The registry answered 401: the token expired; the caller renews auth and runs the job again. */
  | { readonly kind: "unauthorized"; readonly fetched: number };

export type ProgressListener = (bytesInFile: number) => void;

const PROGRESS_INTERVAL_MS = 100;

/**
 * Fetches a blob into the store's ingest `writer` (which hashes and writes), resuming with
 * a Range request from whatever its partial already holds, and verifies it (the caller
 * commits it into the store, or reads it and discards it). Bytes arrive in
 * one reused buffer (registry `readBlob`), so a download allocates nothing per chunk. A
 * digest or size mismatch leaves nothing to resume from (the writer drops the partial); a
 * network failure keeps what arrived.
 */
export async function transferBlob(
  job: TransferJob,
  writer: IngestWriter,
  onProgress: ProgressListener,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<TransferResult> {
  const { digest, size } = writer.descriptor;
  for (;;) {
    const start = await writer.open();
    if (start === size) {
      await verify(job, writer, start);
      return { kind: "complete", fetched: 0, resumedFrom: start };
    }
    let fetched = 0;
    let lastReport = 0;
    let result: BlobReadResult;
    try {
      result = await readBlob(
        {
          url: job.url,
          headers: job.headers,
          tls: job.tls,
          guard: job.guard,
          ...(start > 0 ? { range: { start } } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(job.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: job.idleTimeoutMs }),
        },
        (head) => {
          const accepted =
            start === 0 ? head.status === 200 : head.status === 206 && rangeStart(head) === start;
          if (accepted) checkLength(head, digest, size, start);
          return accepted;
        },
        (chunk) => {
          fetched += chunk.byteLength;
          const now = Date.now();
          if (now - lastReport >= PROGRESS_INTERVAL_MS) {
            lastReport = now;
            onProgress(start + fetched);
          }
          return writer.write(chunk);
        },
      );
    } catch (err) {
      // Bad bytes (or a bad announcement) are never resumed from: the partial goes.
      if (isIntegrityError(err)) await writer.restart();
      else await writer.pause();
      throw withSource(err, job, start);
    }
    const { status } = result.head;
    const accepted =
      start === 0 ? status === 200 : status === 206 && rangeStart(result.head) === start;
    if (accepted) {
      await verify(job, writer, start);
      onProgress(start + fetched);
      return { kind: "complete", fetched, resumedFrom: start };
    }
    await writer.pause();
    if (status === 401) return { kind: "unauthorized", fetched: 0 };
    if (status === 200) {
      await writer.restart(); // the server ignored the Range: start over
      continue;
    }
    if (status === 206) {
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${job.host} answered a range request for ${digest} with the wrong range`,
        {
          hint: "the registry (or a proxy in between) answered a resumed download with other bytes than asked for; retry, or report it to the registry's operator",
          fields: {
            digest,
            expected: start,
            contentRange: result.head.headers["content-range"],
          },
        },
      );
    }
    throw classify(
      status,
      parseErrorBody(result.errorBody ?? ""),
      { host: job.host, repository: job.repository, digest, what: "blob" },
      (name) => result.head.headers[name],
    );
  }
}

/** A body announced at another length than the descriptor gives is refused before a byte of it is read. */
function checkLength(head: BlobResponseHead, digest: string, size: number, start: number): void {
  const value = head.headers["content-length"];
  if (value === undefined) return;
  // Repeats were checked to agree by the reader: the first stands for all.
  const announced = Number(value.split(",")[0]);
  if (announced === size - start) return;
  throw new FerryError(
    "FERRY_SIZE_MISMATCH",
    `blob ${digest} is ${size} bytes by its descriptor, but the registry announced ${announced}${start > 0 ? ` from offset ${start}` : ""}`,
    {
      hint: "the registry serves other content than the image's manifest describes (or something in between altered it); nothing was stored — report it to the registry's operator",
      fields: { digest, expected: size, announced },
    },
  );
}

function rangeStart(head: BlobResponseHead): number | undefined {
  const m = /^bytes (\d+)-/.exec(head.headers["content-range"] ?? "");
  return m === null ? undefined : Number(m[1]);
}

/** A digest or size mismatch: the bytes were wrong (not the network). */
export function isIntegrityError(err: unknown): boolean {
  return isFerryError(err, "FERRY_SIZE_MISMATCH") || isFerryError(err, "FERRY_DIGEST_MISMATCH");
}

/** Verifies what the writer holds; a mismatch names the source and the offset the attempt resumed from. */
async function verify(job: TransferJob, writer: IngestWriter, resumedFrom: number): Promise<void> {
  try {
    await writer.verify();
  } catch (err) {
    throw withSource(err, job, resumedFrom);
  }
}

/**
 * The offset a failed verification's attempt resumed from (bytes [0, offset) were already in
 * the file, possibly from another source), or undefined for any other error.
 */
export function resumedFromOf(err: unknown): number | undefined {
  if (!isIntegrityError(err)) return undefined;
  const v = (err as FerryError).fields["resumedFrom"];
  return typeof v === "number" ? v : undefined;
}

/** An integrity error names where the bytes came from; other errors pass as they are. */
function withSource(err: unknown, job: TransferJob, resumedFrom: number): unknown {
  if (!isIntegrityError(err) || !isFerryError(err)) return err;
  return new FerryError(err.code, `${err.message}, from ${job.host}/${job.repository}`, {
    hint: err.hint,
    fields: { ...err.fields, host: job.host, repository: job.repository, resumedFrom },
  });
}
