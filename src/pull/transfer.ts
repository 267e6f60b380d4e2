import { rm, stat } from "node:fs/promises";
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
import type { BlobSink } from "../store/index.ts";

/** One blob to fetch into its ingest file. */
export interface TransferJob {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly tls?: TlsSettings | undefined;
  /** The ingest (partial) file; bytes already in it are kept and resumed from. */
  readonly path: string;
  readonly digest: string;
  readonly size: number;
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
 * Fetches a blob into its ingest file through `sink` (which hashes and writes),
 * resuming with a Range request from whatever the file already holds. Bytes
 * arrive in one reused buffer (registry `readBlob`), so a download allocates
 * nothing per chunk. On success the file holds exactly the verified blob,
 * fsynced. A digest or size mismatch deletes the file, so bad bytes are never
 * resumed from; a network failure keeps it.
 */
export async function transferBlob(
  job: TransferJob,
  sink: BlobSink,
  onProgress: ProgressListener,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<TransferResult> {
  let offset = await stat(job.path).then(
    (s) => s.size,
    () => 0,
  );
  if (offset > job.size) offset = 0;
  for (;;) {
    // Starting over goes into a new file (new inode), never the same one truncated: a stream
    // that already sent the old file's first bytes (mirror, peer listener) sees the restart
    // by the inode change, even if the new file grows past what it sent before it looks.
    if (offset === 0) await rm(job.path, { force: true });
    await sink.open(job.path, job.digest, job.size, offset);
    if (offset === job.size) {
      await finish(job, sink, offset);
      return { kind: "complete", fetched: 0, resumedFrom: offset };
    }
    const start = offset;
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
          if (accepted) checkLength(head, job, start);
          return accepted;
        },
        (chunk) => {
          fetched += chunk.byteLength;
          const now = Date.now();
          if (now - lastReport >= PROGRESS_INTERVAL_MS) {
            lastReport = now;
            onProgress(start + fetched);
          }
          return sink.write(chunk);
        },
      );
    } catch (err) {
      await sink.abort().catch(() => undefined);
      if (isIntegrityError(err)) {
        await rm(job.path, { force: true });
        throw withSource(err, job, start);
      }
      throw err;
    }
    const { status } = result.head;
    const accepted =
      start === 0 ? status === 200 : status === 206 && rangeStart(result.head) === start;
    if (accepted) {
      await finish(job, sink, start);
      onProgress(start + fetched);
      return { kind: "complete", fetched, resumedFrom: start };
    }
    await sink.abort();
    if (status === 401) return { kind: "unauthorized", fetched: 0 };
    if (status === 200) {
      offset = 0; // the server ignored the Range: start over
      continue;
    }
    if (status === 206) {
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${job.host} answered a range request for ${job.digest} with the wrong range`,
        {
          hint: "the registry (or a proxy in between) answered a resumed download with other bytes than asked for; retry, or report it to the registry's operator",
          fields: {
            digest: job.digest,
            expected: start,
            contentRange: result.head.headers["content-range"],
          },
        },
      );
    }
    throw classify(
      status,
      parseErrorBody(result.errorBody ?? ""),
      { host: job.host, repository: job.repository, digest: job.digest, what: "blob" },
      (name) => result.head.headers[name],
    );
  }
}

/** A body announced at another length than the descriptor gives is refused before a byte of it is read. */
function checkLength(head: BlobResponseHead, job: TransferJob, start: number): void {
  const value = head.headers["content-length"];
  if (value === undefined) return;
  // Repeats were checked to agree by the reader: the first stands for all.
  const announced = Number(value.split(",")[0]);
  if (announced === job.size - start) return;
  throw new FerryError(
    "FERRY_SIZE_MISMATCH",
    `blob ${job.digest} is ${job.size} bytes by its descriptor, but the registry announced ${announced}${start > 0 ? ` from offset ${start}` : ""}`,
    {
      hint: "the registry serves other content than the image's manifest describes (or something in between altered it); nothing was stored — report it to the registry's operator",
      fields: { digest: job.digest, expected: job.size, announced },
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

async function finish(job: TransferJob, sink: BlobSink, resumedFrom: number): Promise<void> {
  try {
    await sink.finish();
  } catch (err) {
    if (isIntegrityError(err)) {
      await rm(job.path, { force: true });
      throw withSource(err, job, resumedFrom);
    }
    throw err;
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

function withSource(err: unknown, job: TransferJob, resumedFrom: number): unknown {
  if (!isFerryError(err)) return err;
  return new FerryError(err.code, `${err.message}, from ${job.host}/${job.repository}`, {
    hint: err.hint,
    fields: { ...err.fields, host: job.host, repository: job.repository, resumedFrom },
  });
}
