/** Compression recognised by magic bytes: of whole archives (`docker save | gzip`) and of layers. */
import { PassThrough, Readable, type Transform } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";

export type Compression = "none" | "gzip" | "zstd" | "bzip2" | "xz";

/** Bytes needed to tell the formats apart. */
export const MAGIC_LENGTH = 6;

export function detectCompression(head: Uint8Array): Compression {
  const b = (i: number) => head[i];
  if (b(0) === 0x1f && b(1) === 0x8b) return "gzip";
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return "zstd";
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68) return "bzip2";
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a)
    return "xz";
  return "none";
}

/** A stream that undoes the compression, or undefined when Node cannot (bzip2, xz). */
export function decompressor(compression: Compression): Transform | undefined {
  if (compression === "none") return new PassThrough();
  if (compression === "gzip") return createGunzip();
  if (compression === "zstd") return createZstdDecompress();
  return undefined;
}

/** Collects the first bytes of a stream while passing everything through unchanged. */
export class MagicProbe {
  #head = Buffer.alloc(0);

  see(chunk: Uint8Array): void {
    if (this.#head.length < MAGIC_LENGTH) {
      this.#head = Buffer.concat([this.#head, chunk.subarray(0, MAGIC_LENGTH - this.#head.length)]);
    }
  }

  get compression(): Compression {
    return detectCompression(this.#head);
  }
}

/** Reads the first bytes of `input` and returns a stream of the same bytes, decompressed if need be. */
export async function uncompressedArchive(
  input: Readable,
): Promise<{ stream: Readable; compression: Compression }> {
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first: Buffer[] = [];
  let length = 0;
  while (length < MAGIC_LENGTH) {
    const next = await chunks.next();
    if (next.done) break;
    first.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(first);
  async function* again(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const next = await chunks.next();
      if (next.done) return;
      yield next.value;
    }
  }
  const raw = Readable.from(again(), { objectMode: false });
  const compression = detectCompression(head);
  const undo = compression === "none" ? undefined : decompressor(compression);
  if (undo === undefined) return { stream: raw, compression };
  raw.on("error", (err) => undo.destroy(err));
  return { stream: raw.pipe(undo), compression };
}
