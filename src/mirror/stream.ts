import { type FileHandle, open, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";

const CHUNK = 1 << 20;

/**
 * Writes file bytes [start, end) to the response, waiting for drain. Returns
 * the position reached: `end`, or less if the file is shorter or the client
 * went away (then `res.destroyed`).
 */
export async function sendRange(
  res: ServerResponse,
  file: FileHandle,
  start: number,
  end: number,
): Promise<number> {
  // Two buffers, reused: one is read into while the socket still holds the other.
  const size = Math.min(CHUNK, Math.max(1, end - start));
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  const flushed: Array<Promise<void> | undefined> = [undefined, undefined];
  let position = start;
  for (let n = 0; position < end; n++) {
    const slot = n % 2;
    await flushed[slot]; // the socket is done with this buffer
    if (res.destroyed) return position;
    const buffer = buffers[slot] as Buffer;
    const { bytesRead } = await file.read(
      buffer,
      0,
      Math.min(buffer.length, end - position),
      position,
    );
    if (bytesRead === 0) break; // shorter than expected (still being written): the caller retries later
    position += bytesRead;
    let more = true;
    flushed[slot] = new Promise<void>((resolve) => {
      more = res.write(buffer.subarray(0, bytesRead), () => resolve());
    });
    if (!more && !(await drained(res))) return position;
  }
  await Promise.all(flushed);
  return position;
}

/** Waits for 'drain'; false if the response closed first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const onDrain = () => {
      res.off("close", onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off("drain", onDrain);
      resolve(false);
    };
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}

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
        if ((await sendRange(res, file, sent, options.size)) === options.size) res.end();
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
            sent = await sendRange(res, file, sent, inFile);
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
