/**
 * Writes one layer of ferry's image: entries → tar (fixed owner and mtime) → hash (diff ID)
 * → gzip → a stream (the store's writer, which hashes the digest).
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import type { LayerEntry } from "./image-files.ts";

function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

/** Writes the entries as a gzip layer into `out`; returns the layer's diff ID (the tar's sha256). */
export async function writeLayer(
  entries: readonly LayerEntry[],
  out: Writable,
  options: { mtime: Date; level: number },
): Promise<{ diffId: string }> {
  const diff = createHash("sha256");
  const pack = tar.pack();
  const writing = pipeline(
    Readable.from(pack),
    hashing(diff),
    createGzip({ level: options.level, chunkSize: 256 * 1024 }),
    out,
  );
  // If the layer cannot be written, stop adding entries at once.
  const failed = writing.then(() => new Promise<never>(() => {}));
  failed.catch(() => undefined);
  const step = <T>(p: Promise<T>) => Promise.race([p, failed]);
  try {
    for (const e of entries) await step(addEntry(pack, e, options.mtime));
    pack.finalize();
    await writing;
  } catch (err) {
    pack.destroy();
    await writing.catch(() => undefined);
    throw err;
  }
  return { diffId: `sha256:${diff.digest("hex")}` };
}

async function addEntry(pack: tar.Pack, e: LayerEntry, mtime: Date): Promise<void> {
  const header = {
    name: e.path.slice(1) + (e.type === "directory" ? "/" : ""),
    mode: e.mode,
    mtime,
    uid: 0,
    gid: 0,
    uname: "root",
    gname: "root",
  };
  if (e.type !== "file") {
    return new Promise((ok, fail) => {
      pack.entry(
        { ...header, type: e.type, ...(e.linkname === undefined ? {} : { linkname: e.linkname }) },
        (err) => (err ? fail(err) : ok()),
      );
    });
  }
  if (e.content !== undefined) {
    const content = e.content;
    return new Promise((ok, fail) => {
      pack.entry({ ...header, size: content.length }, content, (err) => (err ? fail(err) : ok()));
    });
  }
  const source = e.source as string;
  const { size } = await stat(source);
  const { promise: finished, resolve: ok, reject: fail } = Promise.withResolvers<void>();
  finished.catch(() => undefined); // awaited below
  const sink = pack.entry({ ...header, size }, (err) => (err ? fail(err) : ok()));
  sink.on("error", () => {}); // reported through the callback
  for await (const chunk of createReadStream(source)) {
    if (!sink.write(chunk))
      await new Promise<void>((drained) => sink.once("drain", () => drained()));
  }
  sink.end(undefined);
  await finished;
}
