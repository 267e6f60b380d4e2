import { createReadStream } from "node:fs";
import { open, rm, stat } from "node:fs/promises";
import type { Dispatcher } from "undici";
import { DigestVerifier } from "../digest/index.ts";
import { FerryError, isFerryError } from "../observe/index.ts";
import { errorFromResponse, header, networkError, send } from "../registry/index.ts";

/** One blob to fetch into its ingest file. Plain data, so it can cross to a worker thread. */
export interface TransferJob {
  readonly url: string;
  readonly headers: Record<string, string>;
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
 * Fetches a blob into its ingest file while hashing it, resuming with a Range
 * request from whatever the file already holds. On success the file holds
 * exactly the verified blob, fsynced. A digest or size mismatch deletes the
 * file, so bad bytes are never resumed from; a network failure keeps it.
 */
export async function transferBlob(
  job: TransferJob,
  onProgress: ProgressListener,
  options: { dispatcher?: Dispatcher; signal?: AbortSignal } = {},
): Promise<TransferResult> {
  let offset = await stat(job.path).then(
    (s) => s.size,
    () => 0,
  );
  if (offset > job.size) {
    await rm(job.path, { force: true });
    offset = 0;
  }
  let verifier = new DigestVerifier(job.digest, job.size);
  if (offset > 0) await hashFilePrefix(job.path, offset, verifier);
  if (offset === job.size) {
    return finish(job, verifier, 0, offset);
  }
  const res = await send(
    {
      method: "GET",
      url: job.url,
      headers: offset > 0 ? { ...job.headers, range: `bytes=${offset}-` } : job.headers,
      signal: options.signal,
    },
    { dispatcher: options.dispatcher },
  );
  if (res.status === 401) {
    res.body.resume();
    return { kind: "unauthorized", fetched: 0 };
  }
  if (res.status === 200 && offset > 0) {
    // The server ignored the Range: start over.
    offset = 0;
    verifier = new DigestVerifier(job.digest, job.size);
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
  const file = await open(job.path, offset === 0 ? "w" : "r+", 0o644);
  let fetched = 0;
  let lastReport = 0;
  try {
    let position = offset;
    for await (const chunk of res.body) {
      const bytes = chunk as Buffer;
      verifier.update(bytes);
      await file.write(bytes, 0, bytes.length, position);
      position += bytes.length;
      fetched += bytes.length;
      const now = Date.now();
      if (now - lastReport >= PROGRESS_INTERVAL_MS) {
        lastReport = now;
        onProgress(position);
      }
    }
    await file.sync();
  } catch (err) {
    await file.close();
    if (isFerryError(err, "FERRY_SIZE_MISMATCH")) {
      res.body.destroy();
      await rm(job.path, { force: true });
      throw withSource(err, job);
    }
    throw networkError(err, job.url);
  }
  await file.close();
  onProgress(offset + fetched);
  return finish(job, verifier, fetched, resumedFrom);
}

async function finish(
  job: TransferJob,
  verifier: DigestVerifier,
  fetched: number,
  resumedFrom: number,
): Promise<TransferResult> {
  try {
    verifier.verify();
  } catch (err) {
    await rm(job.path, { force: true });
    throw withSource(err, job);
  }
  return { kind: "complete", fetched, resumedFrom };
}

function withSource(err: unknown, job: TransferJob): unknown {
  if (!isFerryError(err)) return err;
  return new FerryError(err.code, `${err.message}, from ${job.host}/${job.repository}`, {
    hint: err.hint,
    fields: { ...err.fields, host: job.host, repository: job.repository },
  });
}

async function hashFilePrefix(
  path: string,
  length: number,
  verifier: DigestVerifier,
): Promise<void> {
  for await (const chunk of createReadStream(path, {
    start: 0,
    end: length - 1,
    highWaterMark: 1 << 20,
  })) {
    verifier.update(chunk as Buffer);
  }
}
