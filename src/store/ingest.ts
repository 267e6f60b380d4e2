import { copyFile, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { fsyncDir } from "../fsx/index.ts";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import { diskError } from "./atomic.ts";
import { type BlobSink, LocalSink } from "./blob-sink.ts";
import type { Lock } from "./lock.ts";
import type { DiskPressure } from "./pressure.ts";

export interface IngestOptions {
  readonly signal?: AbortSignal | undefined;
  /**
   * Where bytes are hashed and written: this thread by default; pull's worker pool passes a
   * sink that runs the same LocalSink on another core.
   */
  readonly sink?: () => BlobSink;
}

/** The files and state one ingest works on, given by the Store that holds its lock. */
export interface IngestPlace {
  /** The partial file, named by digest so that a later ingest resumes it. */
  readonly partial: string;
  readonly blob: string;
  readonly lock: Lock;
  readonly pressure: DiskPressure;
}

/**
 * Writes one blob into the store, as containerd's content writer does: bytes go to the
 * partial file, hashed as they are written (one pass), and `commit` moves it into `blobs/`
 * only if its size and digest are the descriptor's. Holds the blob's ingest lock from
 * `Store.ingest` until `close`. A partial left by an earlier run is resumed: `open` re-hashes
 * it and answers its length, the offset to fetch the rest from.
 */
export class IngestWriter {
  readonly descriptor: Descriptor;
  readonly #place: IngestPlace;
  readonly #makeSink: () => BlobSink;
  #sink: BlobSink | undefined;
  #offset = 0;
  /** Wrong bytes were written: the partial must never be resumed from. */
  #bad = false;
  /** The disk was full: the partial could only be resumed with space it lacks. */
  #full = false;
  #closed = false;
  /** The partial was checked and holds exactly the blob. */
  #verified = false;

  constructor(descriptor: Descriptor, place: IngestPlace, options: IngestOptions = {}) {
    this.descriptor = descriptor;
    this.#place = place;
    this.#makeSink = options.sink ?? (() => new LocalSink());
  }

  /** The partial file (servers stream it while it grows, see Store.ingestPath). */
  get path(): string {
    return this.#place.partial;
  }

  /** Bytes the partial holds, resumed and written; the next write continues there. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Opens the partial for writing at the end of what it holds (0 after a restart) and
   * returns that offset. Starting from zero makes a new file (a new inode), never the old one
   * truncated: a stream that already sent the old file's bytes sees the restart.
   */
  async open(): Promise<number> {
    if (this.#sink !== undefined || this.#verified) return this.#offset;
    const { size, digest } = this.descriptor;
    let offset = this.#bad
      ? 0
      : await stat(this.path).then(
          (s) => s.size,
          () => 0,
        );
    if (offset > size) offset = 0;
    this.#bad = false;
    const sink = this.#makeSink();
    try {
      if (offset === 0) await rm(this.path, { force: true });
      await sink.open(this.path, digest, size, offset);
    } catch (err) {
      throw this.#failed(err);
    }
    this.#sink = sink;
    this.#offset = offset;
    return offset;
  }

  /**
   * Makes a finished file the partial (moved, or copied from another filesystem) and opens it,
   * hashing all of it as a resume would; `verify` / `commit` then check it.
   */
  async adopt(file: string): Promise<void> {
    await this.pause();
    this.#verified = false;
    this.#bad = false;
    try {
      await rename(file, this.path).catch(async (err: unknown) => {
        if ((err as { code?: string }).code !== "EXDEV") throw err;
        await copyFile(file, this.path);
        await rm(file, { force: true });
      });
    } catch (err) {
      throw this.#failed(diskError(err, this.path));
    }
    const { digest, size } = this.descriptor;
    const held = (await stat(this.path)).size;
    if (held !== size) {
      await this.restart();
      throw new FerryError(
        "FERRY_SIZE_MISMATCH",
        `refusing to store a ${held}-byte file as ${digest}: its descriptor gives ${size} bytes`,
        { fields: { digest, expected: size, received: held } },
      );
    }
    await this.open();
  }

  /** Hashes and writes a chunk; a returned promise means "wait before sending more". */
  write(chunk: Uint8Array): undefined | Promise<void> {
    const sink = this.#sink;
    if (sink === undefined) throw new FerryError("FERRY_INTERNAL", "ingest writer is not open");
    let wait: undefined | Promise<void>;
    try {
      wait = sink.write(chunk);
    } catch (err) {
      throw this.#failed(err);
    }
    this.#offset += chunk.byteLength;
    return wait?.catch((err: unknown) => {
      throw this.#failed(err);
    });
  }

  /** Stops writing; the partial keeps what arrived for the next `open` (wrong bytes excepted). */
  async pause(): Promise<void> {
    const sink = this.#sink;
    this.#sink = undefined;
    await sink?.abort().catch(() => undefined);
    if (this.#bad) {
      this.#verified = false;
      await rm(this.path, { force: true });
    }
  }

  /** Drops what the partial holds: the next `open` starts from zero. */
  async restart(): Promise<void> {
    this.#bad = true;
    await this.pause();
    this.#offset = 0;
  }

  /**
   * Checks the partial: size, then digest (containerd's Commit(size, expected)), and flushes it
   * to disk. On a mismatch the partial is deleted and the FerryError (FERRY_SIZE_MISMATCH,
   * FERRY_DIGEST_MISMATCH) says so; after success the partial holds exactly the blob.
   */
  async verify(): Promise<void> {
    if (this.#verified) return;
    const sink = this.#sink;
    if (sink === undefined) throw new FerryError("FERRY_INTERNAL", "ingest writer is not open");
    const { digest, size } = this.descriptor;
    if (this.#offset !== size) {
      const received = this.#offset;
      await this.restart();
      throw new FerryError(
        "FERRY_SIZE_MISMATCH",
        `content of ${digest} ended after ${received} of the ${size} bytes its descriptor gives`,
        {
          hint: "the source delivered a truncated blob; nothing was stored — retry",
          fields: { digest, expected: size, received },
        },
      );
    }
    this.#sink = undefined;
    try {
      await sink.finish();
    } catch (err) {
      throw this.#failed(err);
    }
    this.#verified = true;
  }

  /** Verifies the partial (see verify) and moves it into `blobs/`; nothing reaches `blobs/` unverified. */
  async commit(): Promise<void> {
    await this.verify();
    const { blob, pressure } = this.#place;
    const move = async () => {
      try {
        await rename(this.path, blob);
        await fsyncDir(dirname(blob));
      } catch (err) {
        throw diskError(err, blob);
      }
    };
    try {
      await pressure.track(move());
    } catch (err) {
      throw this.#failed(err);
    }
  }

  /** Ends the ingest without a blob: the partial goes (a copy's staged blob, once uploaded). */
  async discard(): Promise<void> {
    this.#bad = true;
    await this.close();
  }

  /** Ends the ingest: an uncommitted partial stays for a resume (unless on a full disk); the lock goes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.pause();
      if (this.#full || this.#bad) await rm(this.path, { force: true });
    } finally {
      await this.#place.lock.release();
    }
  }

  /** Notes what a failure means for the partial; returns it to throw. */
  #failed(err: unknown): unknown {
    if (isFerryError(err, "FERRY_SIZE_MISMATCH") || isFerryError(err, "FERRY_DIGEST_MISMATCH")) {
      this.#bad = true;
    } else if (isFerryError(err, "FERRY_DISK_FULL")) {
      this.#full = true;
      this.#place.pressure.observe(err);
    }
    return err;
  }
}
