import { type Readable, Transform, type TransformCallback, pipeline } from "node:stream";
import { DigestVerifier } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import type { Descriptor } from "./manifest.ts";
import type { BlobSource, ByteRange } from "./source.ts";

/** `body` passed through a check that runs as it is read; a failed check destroys both. */
function checked(body: Readable, update: (chunk: Buffer) => void, finish: () => void): Readable {
  const check = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      try {
        update(chunk);
        done(null, chunk);
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done: TransformCallback) {
      try {
        finish();
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
  // The reader sees the error on the stream it reads; nothing else needs to hear of it.
  return pipeline(body, check, () => {});
}

/** A whole blob's bytes, hashed as they are read: the stream fails instead of ending when they are not `desc`. */
export function verifiedBlob(body: Readable, desc: Descriptor): Readable {
  const verifier = new DigestVerifier(desc.digest, desc.size);
  return checked(
    body,
    (chunk) => verifier.update(chunk),
    () => verifier.verify(),
  );
}

/**
 * Bytes [start, end) of `digest`: the stream fails as soon as more arrive than asked. One
 * that ends short is the reader's to notice (readRange counts; a chunk reader stops at its
 * gzip member's end and checks what it decoded).
 */
export function boundedRange(
  body: Readable,
  range: ByteRange,
  digest: string,
  from: string,
): Readable {
  const want = range.end - range.start;
  let got = 0;
  return checked(
    body,
    (chunk) => {
      got += chunk.length;
      if (got > want) throw rangeMismatch(from, "more than", range, digest);
    },
    () => {},
  );
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/**
 * A 206 answer's body as boundedRange reads it, once its Content-Range names exactly
 * [start, end) of a blob of `desc`'s size: other bytes of the same length would pass the count.
 */
export function rangeAnswer(
  body: Readable,
  contentRange: string | undefined,
  range: ByteRange,
  desc: Descriptor,
  from: string,
): Readable {
  const m = CONTENT_RANGE.exec(contentRange?.trim() ?? "");
  if (
    m !== null &&
    Number(m[1]) === range.start &&
    Number(m[2]) === range.end - 1 &&
    (m[3] === "*" || Number(m[3]) === desc.size)
  )
    return boundedRange(body, range, desc.digest, from);
  body.destroy();
  const answered = contentRange === undefined ? "no Content-Range" : `"${contentRange}"`;
  throw new FerryError(
    "FERRY_SIZE_MISMATCH",
    `${from} answered bytes ${range.start}-${range.end - 1} of ${desc.digest} with ${answered}`,
    {
      hint: "the source (or a proxy in between) serves other bytes than asked for; nothing was used — report it to its operator",
      fields: { digest: desc.digest, start: range.start, end: range.end },
    },
  );
}

/** Bytes [start, end) of a blob in memory: exactly that many, or FERRY_SIZE_MISMATCH. */
export async function readRange(
  source: BlobSource,
  desc: Descriptor,
  range: ByteRange,
  signal?: AbortSignal,
): Promise<Buffer> {
  const body = await source.open(desc, range, signal);
  const buffer = Buffer.allocUnsafe(range.end - range.start);
  let got = 0;
  for await (const part of body) {
    (part as Buffer).copy(buffer, got);
    got += (part as Buffer).length;
  }
  if (got !== buffer.length) throw rangeMismatch("the source", String(got), range, desc.digest);
  return buffer;
}

function rangeMismatch(from: string, got: string, range: ByteRange, digest: string): FerryError {
  const want = range.end - range.start;
  return new FerryError(
    "FERRY_SIZE_MISMATCH",
    `${from} sent ${got} of the ${want} bytes asked of ${digest} at ${range.start}`,
    { fields: { digest, start: range.start, end: range.end } },
  );
}

/** A range a blob of `size` bytes can serve: 0 ≤ start < end ≤ size. */
export function checkRange(range: ByteRange, desc: Descriptor): void {
  const { start, end } = range;
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    start < 0 ||
    end <= start ||
    end > desc.size
  )
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `bytes [${start}, ${end}) are not a range of ${desc.digest} (${desc.size} bytes)`,
    );
}

/** A stream's bytes in memory, refused past `limit`. */
export async function readAll(body: Readable, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body) {
    size += (part as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new FerryError("FERRY_INVALID_MANIFEST", `${what} is larger than ${limit} bytes`);
    }
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}
