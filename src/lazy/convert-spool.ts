import type { FileHandle } from "node:fs/promises";

/** Bytes read per file read: entries are mostly visited in file order, so one read serves many. */
const WINDOW = 1024 * 1024;

/**
 * Positional reads of a spooled layer through a window of the file, so that
 * visiting entries in order costs one read per window rather than several per entry.
 */
export class SpoolReader {
  readonly #file: FileHandle;
  readonly size: number;
  #window: Buffer = Buffer.alloc(0);
  #windowStart = 0;

  constructor(file: FileHandle, size: number) {
    this.#file = file;
    this.size = size;
  }

  /** Bytes [start, start + length), fewer only at the end of the file. Returned bytes may share memory with the window: copy to keep them. */
  async read(start: number, length: number): Promise<Buffer> {
    const end = Math.min(start + length, this.size);
    if (end <= start) return Buffer.alloc(0);
    if (start >= this.#windowStart && end <= this.#windowStart + this.#window.length)
      return this.#window.subarray(start - this.#windowStart, end - this.#windowStart);
    if (end - start >= WINDOW) return this.#direct(start, end);
    const fill = Math.min(this.size, start + WINDOW);
    this.#window = await this.#direct(start, fill);
    this.#windowStart = start;
    return this.#window.subarray(0, end - start);
  }

  async #direct(start: number, end: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(end - start);
    let got = 0;
    while (got < buffer.length) {
      const { bytesRead } = await this.#file.read(buffer, got, buffer.length - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buffer.subarray(0, got);
  }
}
