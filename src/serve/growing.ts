import { type FileHandle, open, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { refuseRange, writeBlobHead } from "./head.ts";
import { parseRange } from "./range.ts";
import { sendFileRange } from "./send-file.ts";
import type { BlobRequest } from "./stored.ts";

/** A blob being downloaded into an ingest file, renamed to `blobPath` once verified. */
export interface GrowingBlob {
  ingestPath: string;
  blobPath: string;
  size: number;
  /**
   * Starts or joins the download; `watch` hears how many bytes the ingest file holds.
   * Resolves once the blob is verified and committed, rejects if it never will be.
   */
  fetch(watch: (bytes: number) => void): Promise<unknown>;
}

export interface GrowingRequest extends Omit<BlobRequest, "method"> {
  /**
   * When the status line goes out: "at-once" (the client sees headers before any byte
   * arrives; a failure can only cut the body) or "with-first-byte" (a failure before any
   * byte is the caller's to answer).
   */
  announce: "at-once" | "with-first-byte";
}

/**
 * How the response ended: complete, refused with 416 (nothing fetched), cut (destroyed: the
 * receiver left, the download failed or restarted after bytes went out), or unanswered
 * because the download failed or restarted before anything was sent ("with-first-byte" only).
 */
export type GrowingOutcome =
  | "complete"
  | "unsatisfiable"
  | "cut"
  | "restarted"
  | { failed: unknown };

/** Progress reports are throttled: look at the file again this soon even without one. */
const LOOK_AGAIN_MS = 50;

/**
 * Answers a GET for a blob still downloading: bytes go out as the ingest file grows, all
 * but the blob's last byte, which follows only once the blob is verified and committed.
 * If the download fails, or the file the bytes came from is not the one committed (a
 * failed check deleted it and a new download began), the response is cut, so no client
 * ever gets a complete body for a blob that did not verify.
 */
export async function serveGrowingBlob(
  res: ServerResponse,
  blob: GrowingBlob,
  request: GrowingRequest,
): Promise<GrowingOutcome> {
  const span = parseRange(request.range, blob.size);
  if (span === "unsatisfiable") {
    refuseRange(res, request.headers, blob.size);
    return "unsatisfiable";
  }
  const [start, end] = span ?? [0, blob.size];
  const download = new Download(blob);
  const announce = () => {
    if (!res.headersSent) writeBlobHead(res, request.headers, span, blob.size);
  };
  if (request.announce === "at-once") {
    announce();
    res.flushHeaders(); // writeHead alone holds the head back until the first body byte
  }
  const send = (file: FileHandle, from: number, to: number) =>
    sendFileRange(res, file, from, to, request.pace, request.onSent);
  const cut = (cause?: Error): GrowingOutcome => {
    res.destroy(cause);
    return "cut";
  };
  let file: FileHandle | undefined;
  /** The ingest file the sent bytes came from: a download that restarts in a new file invalidates them. */
  let inode = -1;
  let sent = start;
  try {
    for (;;) {
      if (res.destroyed) return "cut";
      if (download.failure !== undefined) {
        const failure = download.failure;
        if (!res.headersSent) return { failed: failure };
        return cut(failure instanceof Error ? failure : new Error(String(failure)));
      }
      if (download.committed) {
        // Verified and committed: the rest comes from the blob itself.
        const committed = await open(blob.blobPath, "r");
        try {
          if (sent > start && (await committed.stat()).ino !== inode) return cut(); // what was sent came from a download that did not become the blob
          announce();
          if ((await send(committed, sent, end)) !== end) return cut();
          res.end();
          return "complete";
        } finally {
          await committed.close();
        }
      }
      const limit = Math.min(download.available, blob.size - 1, end);
      if (sent < limit) {
        if (file === undefined) {
          file = await open(blob.ingestPath, "r").catch(() => undefined);
          if (file !== undefined) inode = (await file.stat()).ino;
        }
        if (file !== undefined) {
          // Renamed into place already (committed) or not there for a moment: not a restart.
          const current = await stat(blob.ingestPath)
            .catch(() => stat(blob.blobPath))
            .catch(() => undefined);
          const inFile = (await file.stat()).size;
          if ((current !== undefined && current.ino !== inode) || (sent > start && inFile < sent)) {
            // The download restarted in a new file (a check failed) or from zero.
            return res.headersSent ? cut() : "restarted";
          }
          const to = Math.min(inFile, limit);
          if (to > sent) {
            announce();
            sent = await send(file, sent, to);
            continue;
          }
        }
      }
      await download.change();
    }
  } finally {
    download.stop();
    await file?.close();
  }
}

/** What the download has reported: bytes in the ingest file, committed, or failed. */
class Download {
  available = 0;
  committed = false;
  failure: unknown;
  #wake: (() => void) | undefined;
  #stopped = false;

  constructor(blob: GrowingBlob) {
    const done = blob.fetch((bytes) => {
      this.available = Math.max(this.available, bytes);
      this.#poke();
    });
    done.then(
      () => {
        this.committed = true;
        this.#poke();
      },
      (err: unknown) => {
        this.failure = err ?? new Error("blob fetch failed");
        this.#poke();
      },
    );
  }

  /** Resolves on the next report, or after LOOK_AGAIN_MS. */
  change(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      setTimeout(() => this.#poke(), LOOK_AGAIN_MS).unref();
    });
  }

  /** Reports after the response ended are not listened to. */
  stop(): void {
    this.#stopped = true;
    this.#wake = undefined;
  }

  #poke(): void {
    if (this.#stopped) return;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
