import { rm, stat } from "node:fs/promises";
import { FerryError, isFerryError } from "../observe/index.ts";
import {
  type Agents,
  errorFromResponse,
  header,
  networkError,
  send,
  type TlsSettings,
} from "../registry/index.ts";
import type { BlobSink } from "./sink.ts";

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
}

export type TransferResult =
  | { readonly kind: "complete"; readonly fetched: number; readonly resumedFrom: number }
  /** The registry answered 401: the token expired; the caller renews auth and runs the job again. */
  | { readonly kind: "unauthorized"; readonly fetched: number };

export type ProgressListener = (bytesInFile: number) => void;

const PROGRESS_INTERVAL_MS = 100;

/**
 * Fetches a blob into its ingest file through `sink` (which hashes and writes),
 * resuming with a Range request from whatever the file already holds. On
 * success the file holds exactly the verified blob, fsynced. A digest or size
 * mismatch deletes the file, so bad bytes are never resumed from; a network
 * failure keeps it.
 */
export async function transferBlob(
  job: TransferJob,
  sink: BlobSink,
  onProgress: ProgressListener,
  options: { agents?: Agents; signal?: AbortSignal | undefined } = {},
): Promise<TransferResult> {
  let offset = await stat(job.path).then(
    (s) => s.size,
    () => 0,
  );
  if (offset > job.size) offset = 0;
  if (offset === job.size) {
    await sink.open(job.path, job.digest, job.size, offset);
    await finish(job, sink);
    return { kind: "complete", fetched: 0, resumedFrom: offset };
  }
  const res = await send(
    {
      method: "GET",
      url: job.url,
      headers: offset > 0 ? { ...job.headers, range: `bytes=${offset}-` } : job.headers,
      signal: options.signal,
      tls: job.tls,
    },
    options.agents === undefined ? {} : { agents: options.agents },
  );
  if (res.status === 401) {
    res.body.resume();
    return { kind: "unauthorized", fetched: 0 };
  }
  if (res.status === 200 && offset > 0) {
    offset = 0; // the server ignored the Range: start over
  } else if (res.status === 206) {
    const start = /^bytes (\d+)-/.exec(header(res, "content-range") ?? "")?.[1];
    if (Number(start) !== offset) {
      res.body.destroy();
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${job.host} answered a range request for ${job.digest} with the wrong range`,
        {
          fields: {
            digest: job.digest,
            expected: offset,
            contentRange: header(res, "content-range"),
          },
        },
      );
    }
  } else if (res.status !== 200) {
    throw await errorFromResponse(res, {
      host: job.host,
      repository: job.repository,
      digest: job.digest,
      what: "blob",
    });
  }
  const resumedFrom = offset;
  try {
    await sink.open(job.path, job.digest, job.size, offset);
  } catch (err) {
    res.body.destroy();
    throw err;
  }
  let fetched = 0;
  let lastReport = 0;
  try {
    for await (const chunk of res.body) {
      const wait = sink.write(chunk as Buffer);
      fetched += (chunk as Buffer).length;
      if (wait !== undefined) await wait;
      const now = Date.now();
      if (now - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = now;
        onProgress(offset + fetched);
      }
    }
  } catch (err) {
    res.body.destroy();
    await sink.abort().catch(() => undefined);
    if (isIntegrityError(err)) {
      await rm(job.path, { force: true });
      throw withSource(err, job);
    }
    throw networkError(err, job.url);
  }
  await finish(job, sink);
  onProgress(offset + fetched);
  return { kind: "complete", fetched, resumedFrom };
}

function isIntegrityError(err: unknown): boolean {
  return isFerryError(err, "FERRY_SIZE_MISMATCH") || isFerryError(err, "FERRY_DIGEST_MISMATCH");
}

async function finish(job: TransferJob, sink: BlobSink): Promise<void> {
  try {
    await sink.finish();
  } catch (err) {
    if (isIntegrityError(err)) {
      await rm(job.path, { force: true });
      throw withSource(err, job);
    }
    throw err;
  }
}

function withSource(err: unknown, job: TransferJob): unknown {
  if (!isFerryError(err)) return err;
  return new FerryError(err.code, `${err.message}, from ${job.host}/${job.repository}`, {
    hint: err.hint,
    fields: { ...err.fields, host: job.host, repository: job.repository },
  });
}
