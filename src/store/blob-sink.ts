import { createReadStream, writeSync } from "node:fs";
import { type FileHandle, open, rm } from "node:fs/promises";
import { DigestVerifier } from "../digest/index.ts";
import { diskError } from "./atomic.ts";

/**
 * Where a blob's bytes go while they arrive: hashed, size-checked and written
 * to the ingest file. `LocalSink` does it on the calling thread; `SinkPool`
 * (sink-pool.ts) does the same work on worker threads so hashing and writing
 * overlap with receiving on another core.
 */
export interface BlobSink {
  /** Opens the ingest file at `offset` (bytes [0, offset) are kept and re-hashed; 0 truncates). */
  open(path: string, digest: string, size: number, offset: number): Promise<void>;
  /** Hashes and writes a chunk; a returned promise means "wait before sending more". */
  write(chunk: Uint8Array): undefined | Promise<void>;
  /** Flushes to disk and verifies digest and size; on mismatch the file is deleted and this throws. */
  finish(): Promise<void>;
  /** Stops without verifying; the file keeps what arrived, for a later resume. */
  abort(): Promise<void>;
}

/**
 * Bytes written between early flushes. The kernel would otherwise keep a blob in the
 * page cache until finish()'s fsync and only then write all of it, the disk idle while
 * the network was busy; flushing as the blob arrives leaves finish() only the tail.
 */
const FLUSH_EVERY = 32 * 1024 * 1024;

export class LocalSink implements BlobSink {
  #file: FileHandle | undefined;
  #verifier: DigestVerifier | undefined;
  #path = "";
  #position = 0;
  #unflushed = 0;
  /** The early flush in progress (at most one per sink); its failure fails finish(). */
  #flushing: Promise<void> | undefined;
  #flushError: unknown;

  async open(path: string, digest: string, size: number, offset: number): Promise<void> {
    this.#path = path;
    this.#verifier = new DigestVerifier(digest, size);
    this.#position = offset;
    this.#unflushed = 0;
    this.#flushing = undefined;
    this.#flushError = undefined;
    if (offset > 0) {
      for await (const chunk of createReadStream(path, {
        start: 0,
        end: offset - 1,
        highWaterMark: 1 << 20,
      })) {
        this.#verifier.update(chunk as Buffer);
      }
    }
    try {
      this.#file = await open(path, offset === 0 ? "w" : "r+", 0o644);
    } catch (err) {
      throw diskError(err, path);
    }
  }

  write(chunk: Uint8Array): undefined {
    const file = this.#requireOpen();
    (this.#verifier as DigestVerifier).update(chunk);
    // Synchronous: a page-cache write is a memcpy; a thread-pool hop per chunk costs more.
    try {
      // A write the disk takes only part of returns short: the rest must fail (ENOSPC), not vanish.
      for (let done = 0; done < chunk.byteLength; ) {
        done += writeSync(file.fd, chunk, done, chunk.byteLength - done, this.#position + done);
      }
    } catch (err) {
      throw diskError(err, this.#path);
    }
    this.#position += chunk.byteLength;
    this.#unflushed += chunk.byteLength;
    if (this.#unflushed >= FLUSH_EVERY && this.#flushing === undefined) this.#flushEarly(file);
    return undefined;
  }

  /** Starts writing what the file holds so far to disk (thread pool); not waited for here. */
  #flushEarly(file: FileHandle): void {
    this.#unflushed = 0;
    this.#flushing = file.datasync().then(
      () => {
        this.#flushing = undefined;
      },
      (err: unknown) => {
        this.#flushing = undefined;
        this.#flushError ??= err;
      },
    );
  }

  async finish(): Promise<void> {
    const file = this.#requireOpen();
    this.#file = undefined;
    try {
      await this.#flushing;
      if (this.#flushError !== undefined) throw this.#flushError;
      await file.sync();
    } catch (err) {
      throw diskError(err, this.#path);
    } finally {
      await file.close();
    }
    try {
      (this.#verifier as DigestVerifier).verify();
    } catch (err) {
      await rm(this.#path, { force: true });
      throw err;
    }
  }

  async abort(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await this.#flushing;
    await file?.close();
  }

  /** Deletes the ingest file (after bad bytes: never resume from them). */
  async discard(): Promise<void> {
    await this.abort();
    await rm(this.#path, { force: true });
  }

  #requireOpen(): FileHandle {
    if (this.#file === undefined) throw new Error("sink is not open");
    return this.#file;
  }
}
