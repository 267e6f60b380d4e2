/**
 * Writes one layer of ferry's image: entries → tar (fixed owner and mtime) → hash (diff ID)
 * → gzip → hash (digest) → file.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import tar from "tar-stream";
import type { LayerEntry } from "./image-files.ts";

export interface BuiltLayer {
  readonly name: string;
  readonly file: string;
  readonly digest: string;
  readonly size: number;
  readonly diffId: string;
  readonly entries: number;
}

function hashing(hash: Hash, counter?: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      if (counter !== undefined) counter.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

export async function writeLayer(
  name: string,
  entries: readonly LayerEntry[],
  file: string,
  options: { mtime: Date; level: number },
): Promise<BuiltLayer> {
  const diff = createHash("sha256");
  const compressed = createHash("sha256");
  const counter = { bytes: 0 };
  const pack = tar.pack();
  const writing = pipeline(
    Readable.from(pack),
    hashing(diff),
    createGzip({ level: options.level, chunkSize: 256 * 1024 }),
    hashing(compressed, counter),
    createWriteStream(file),
  );
  // If the file cannot be written, stop adding entries at once.
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
  return {
    name,
    file,
    digest: `sha256:${compressed.digest("hex")}`,
    size: counter.bytes,
    diffId: `sha256:${diff.digest("hex")}`,
    entries: entries.length,
  };
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
