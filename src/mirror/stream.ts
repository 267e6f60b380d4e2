import { type FileHandle, open, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { sendFileRange } from "../serve/index.ts";

/**
 * Streams a blob that is still downloading: bytes are sent as the ingest file
 * grows, all but the last one, which is sent only after `done` resolves (the
 * blob verified and committed). If `done` rejects, the response is destroyed:
 * no client ever receives a complete body for a blob that failed verification.
 */
export async function streamGrowing(
  res: ServerResponse,
  options: {
    ingestPath: string;
    blobPath: string;
    size: number;
    /** Subscribes to "the ingest file holds N bytes"; returns an unsubscribe function. */
    subscribe(listener: (bytes: number) => void): () => void;
    done: Promise<unknown>;
  },
): Promise<void> {
  let available = 0;
  let finished = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const unsubscribe = options.subscribe((bytes) => {
    available = Math.max(available, bytes);
    poke();
  });
  options.done.then(
    () => {
      finished = true;
      poke();
    },
    (err: unknown) => {
      failure = err ?? new Error("blob fetch failed");
      poke();
    },
  );
  let file: FileHandle | undefined;
  /** The ingest file the sent bytes came from: a download that restarts in a new file (bad bytes deleted) or from zero invalidates them. */
  let inode = -1;
  let sent = 0;
  try {
    for (;;) {
      if (failure !== undefined) {
        res.destroy(failure instanceof Error ? failure : new Error(String(failure)));
        return;
      }
      if (finished) {
        // Verified and committed: the rest comes from the blob itself.
        await file?.close();
        file = await open(options.blobPath, "r");
        if (sent > 0 && (await file.stat()).ino !== inode) {
          res.destroy(); // what was sent came from a download that did not become the blob
          return;
        }
        if ((await sendFileRange(res, file, sent, options.size)) === options.size) res.end();
        else res.destroy();
        return;
      }
      const limit = Math.min(available, options.size - 1);
      if (sent < limit) {
        if (file === undefined) {
          file = await open(options.ingestPath, "r").catch(() => undefined);
          if (file !== undefined) inode = (await file.stat()).ino;
        }
        if (file !== undefined) {
          // Renamed into place already (committed) or not there for a moment: not a restart.
          const current = await stat(options.ingestPath)
            .catch(() => stat(options.blobPath))
            .catch(() => undefined);
          const inFile = Math.min((await file.stat()).size, limit);
          if ((current !== undefined && current.ino !== inode) || (await file.stat()).size < sent) {
            res.destroy(); // the download restarted (a check failed or the source changed): cut
            return;
          }
          if (inFile > sent) {
            sent = await sendFileRange(res, file, sent, inFile);
            if (res.destroyed) return;
            continue;
          }
        }
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        // Progress reports are throttled; look again soon even without one.
        setTimeout(poke, 50).unref();
      });
    }
  } finally {
    unsubscribe();
    await file?.close();
  }
}
