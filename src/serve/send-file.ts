import type { FileHandle } from "node:fs/promises";
import type { ServerResponse } from "node:http";

/** An upload cap: resolves when `bytes` may be sent (the peer listener's Throttle). */
export interface Pace {
  take(bytes: number): Promise<void>;
}

const CHUNK = 1 << 20;

/**
 * Writes file bytes [start, end) to `res` (under an upload cap when given), through two
 * reused buffers (one is read into while the socket still holds the other), waiting for
 * drain. Returns the position reached: `end`, or less if the file is shorter (still being
 * written: the caller retries later) or the receiver went away (then `res.destroyed`).
 */
export async function sendFileRange(
  res: ServerResponse,
  file: FileHandle,
  start: number,
  end: number,
  throttle?: Pace,
  onSent?: (bytes: number) => void,
): Promise<number> {
  const size = Math.min(CHUNK, Math.max(1, end - start));
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  const flushed: Array<Promise<void> | undefined> = [undefined, undefined];
  let position = start;
  for (let n = 0; position < end; n++) {
    const slot = n % 2;
    await flushed[slot];
    if (res.destroyed) return position;
    const buffer = buffers[slot] as Buffer;
    const want = Math.min(buffer.length, end - position);
    const { bytesRead } = await file.read(buffer, 0, want, position);
    if (bytesRead === 0) break;
    if (throttle !== undefined) {
      await throttle.take(bytesRead);
      if (res.destroyed) return position;
    }
    position += bytesRead;
    onSent?.(bytesRead);
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
