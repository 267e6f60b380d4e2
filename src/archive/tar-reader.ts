/**
 * Reads a tar stream once, front to back, refusing what an image archive never needs and a
 * careless extractor would get wrong: names outside the root, links, devices, truncation.
 * Nothing is written to disk here; entries are handed to a visitor as streams.
 */
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { FerryError } from "../observe/index.ts";
import { legacyLayerLinkTarget, normalizeEntryPath } from "./entry-path.ts";
import { archiveInvalid } from "./errors.ts";

export interface TarFile {
  /** Normalized path inside the archive ("blobs/sha256/…", "manifest.json"). */
  readonly path: string;
  /** Size from the header; the body yields exactly this many bytes or the read fails. */
  readonly size: number;
  readonly body: AsyncIterable<Uint8Array>;
}

export interface TarVisitor {
  /** Must consume `body` (what it leaves is drained). */
  file(entry: TarFile): Promise<void>;
  /** A legacy `<id>/layer.tar` symbolic link to another layer in the archive. */
  link(path: string, target: string): void;
}

const END_OF_ARCHIVE = 1024;

/** Passes bytes through and remembers the last 1 KiB: a complete tar ends with two zero blocks. */
class TailKeeper extends Transform {
  tail = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: string, done: () => void): void {
    this.tail = Buffer.from(
      chunk.length >= END_OF_ARCHIVE
        ? chunk.subarray(chunk.length - END_OF_ARCHIVE)
        : Buffer.concat([this.tail, chunk]).subarray(-END_OF_ARCHIVE),
    );
    this.push(chunk);
    done();
  }

  get endsWithTrailer(): boolean {
    return this.tail.length === END_OF_ARCHIVE && this.tail.every((b) => b === 0);
  }
}

export async function readTar(input: Readable, source: string, visitor: TarVisitor): Promise<void> {
  const extract = tar.extract();
  const tail = new TailKeeper();
  let current: string | undefined;
  let entries = 0;
  const feeding = pipeline(input, tail, extract).then(
    () => undefined,
    (err: unknown) => err,
  );
  try {
    for await (const entry of extract) {
      entries++;
      const header = entry.header;
      const checked = normalizeEntryPath(header.name);
      if (!checked.ok)
        throw archiveInvalid(source, `refused: ${checked.problem}`, { entry: header.name });
      current = header.name;
      await visitEntry(header, checked.path, bytesOf(entry), source, visitor);
      for await (const _ of entry) {
        // drain what the visitor left
      }
      current = undefined;
    }
  } catch (err) {
    extract.destroy();
    input.destroy();
    const fed = await feeding;
    // An entry's body fails as "destroyed" when the archive under it failed: say why that was.
    throw readFailure(entryStreamGone(err) && fed !== undefined ? fed : err, source, current);
  }
  const fed = await feeding;
  if (fed !== undefined) throw readFailure(fed, source, current);
  if (entries === 0) throw archiveInvalid(source, "it is empty (no tar entries)");
  if (!tail.endsWithTrailer) {
    throw archiveInvalid(
      source,
      "it ends without the tar end-of-archive marker: the archive is truncated",
    );
  }
}

async function visitEntry(
  header: tar.Header,
  path: string,
  body: AsyncIterable<Uint8Array>,
  source: string,
  visitor: TarVisitor,
): Promise<void> {
  const refuse = (problem: string) =>
    archiveInvalid(source, `refused: ${problem}`, { entry: header.name });
  switch (header.type) {
    case "file":
    case "contiguous-file":
      if (path === "") throw refuse("a file cannot be the archive root");
      await visitor.file({ path, size: header.size, body });
      return;
    case "directory":
      return;
    case "symlink": {
      const target = legacyLayerLinkTarget(path, header.linkname ?? "");
      if (!target.ok) throw refuse(target.problem);
      visitor.link(path, target.path);
      return;
    }
    case "link":
      throw refuse(`it is a hard link (to ${header.linkname})`);
    default:
      throw refuse(`it is a ${header.type}, not a regular file or directory`);
  }
}

function readFailure(err: unknown, source: string, current: string | undefined): FerryError {
  if (err instanceof FerryError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/unexpected end of data/i.test(message)) {
    return archiveInvalid(
      source,
      current === undefined
        ? "the archive is truncated: it ends inside a tar header"
        : "the archive is truncated: it ends inside this entry",
      current === undefined ? { cause: err } : { entry: current, cause: err },
    );
  }
  if (/invalid tar header|invalid header|header exceeds/i.test(message)) {
    return archiveInvalid(source, `it is not a tar archive, or is corrupted (${message})`, {
      cause: err,
    });
  }
  if (/unexpected end of file/i.test(message)) {
    return archiveInvalid(source, "the compressed archive is truncated", { cause: err });
  }
  // zlib's and zstd's own codes (Z_DATA_ERROR, ZSTD_error_…): their messages vary.
  const code = (err as { code?: unknown } | null)?.code;
  const decoder = typeof code === "string" && /^(Z|ZSTD)_/.test(code);
  if (decoder || /incorrect header check|zstd|invalid/i.test(message)) {
    return archiveInvalid(source, `it cannot be decompressed (${message})`, { cause: err });
  }
  return new FerryError("FERRY_STORE_IO", `cannot read archive ${source}: ${message}`, {
    hint: "check the file exists and is readable",
    cause: err,
    fields: { archive: source },
  });
}

/** tar-stream's entry streams (streamx) fail with this code when the extractor is destroyed. */
function entryStreamGone(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === "STREAM_DESTROYED";
}

async function* bytesOf(source: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) yield chunk as Uint8Array;
}
