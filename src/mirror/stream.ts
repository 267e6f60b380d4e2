import { type FileHandle, open } from "node:fs/promises";
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
  let position = start;
  while (position < end) {
    // A fresh buffer per chunk: write() keeps a reference until the socket took it.
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, end - position));
    const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break; // shorter than expected (still being written): the caller retries later
    position += bytesRead;
    if (!res.write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead))) {
      const ok = await new Promise<boolean>((resolve) => {
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
      if (!ok) return position;
    }
    if (res.destroyed) return position;
  }
  return position;
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
        if ((await sendRange(res, file, sent, options.size)) === options.size) res.end();
        else res.destroy();
        return;
      }
      const limit = Math.min(available, options.size - 1);
      if (sent < limit) {
        file ??= await open(options.ingestPath, "r").catch(() => undefined);
        if (file !== undefined) {
          const inFile = Math.min((await file.stat()).size, limit);
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
