import { createHash, type Hash } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsyncDir, tempPathFor } from "../fsx/index.ts";
import { SHA256 } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import { diskError } from "./atomic.ts";
import type { Lock } from "./lock.ts";
import type { DiskPressure } from "./pressure.ts";

/** What an unnamed ingest needs of the Store: where to write, and where and how a digest commits. */
export interface UnnamedPlace {
  /** A directory on the store's filesystem for the temp file. */
  readonly dir: string;
  readonly pressure: DiskPressure;
  blobPath(digest: string): string;
  hasBlob(digest: string, size: number): Promise<boolean>;
  lockIngest(digest: string): Promise<Lock>;
}

/**
 * Writes a blob whose digest is learnt by writing it (an archive entry not named by digest):
 * bytes are hashed as they are written to a temp file; `seal` answers the digest, and
 * `commit` moves the file into `blobs/` under that digest only (containerd's writer opened
 * without an expected digest). A temp file left by a killed process is swept by prune.
 */
export class UnnamedIngest {
  readonly #place: UnnamedPlace;
  readonly #path: string;
  readonly #hash: Hash = createHash(SHA256);
  #file: FileHandle | undefined;
  #size = 0;
  #digest: string | undefined;

  private constructor(place: UnnamedPlace, path: string, file: FileHandle) {
    this.#place = place;
    this.#path = path;
    this.#file = file;
  }

  static async open(place: UnnamedPlace): Promise<UnnamedIngest> {
    const path = tempPathFor(join(place.dir, "unnamed"));
    try {
      return new UnnamedIngest(place, path, await open(path, "wx", 0o644));
    } catch (err) {
      const failure = diskError(err, path);
      place.pressure.observe(failure);
      throw failure;
    }
  }

  get size(): number {
    return this.#size;
  }

  async write(chunk: Uint8Array): Promise<void> {
    const file = this.#requireOpen();
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
    try {
      // A write the disk takes only part of returns short: the rest must fail (ENOSPC), not vanish.
      for (let done = 0; done < chunk.byteLength; ) {
        done += (await file.write(chunk, done, chunk.byteLength - done)).bytesWritten;
      }
    } catch (err) {
      throw this.#noted(diskError(err, this.#path));
    }
  }

  /** Flushes the file to disk; returns the digest it hashed to. */
  async seal(): Promise<string> {
    if (this.#digest !== undefined) return this.#digest;
    const file = this.#requireOpen();
    this.#file = undefined;
    try {
      await file.sync();
    } catch (err) {
      throw this.#noted(diskError(err, this.#path));
    } finally {
      await file.close();
    }
    this.#digest = `${SHA256}:${this.#hash.digest("hex")}`;
    return this.#digest;
  }

  /**
   * Moves the blob into the store as `expected`, which must be the digest it hashed to;
   * false when the store had it already (the temp file goes either way).
   */
  async commit(expected: string): Promise<boolean> {
    const actual = await this.seal();
    const place = this.#place;
    try {
      if (actual !== expected) {
        throw new FerryError(
          "FERRY_DIGEST_MISMATCH",
          `refusing to store content as ${expected}: it hashes to ${actual}`,
          { fields: { expected, actual } },
        );
      }
      const lock = await place.lockIngest(actual);
      try {
        if (await place.hasBlob(actual, this.#size)) return false;
        const blob = place.blobPath(actual);
        const move = async () => {
          try {
            await rename(this.#path, blob);
            await fsyncDir(dirname(blob));
          } catch (err) {
            throw diskError(err, blob);
          }
        };
        await place.pressure.track(move());
        return true;
      } finally {
        await lock.release();
      }
    } finally {
      await rm(this.#path, { force: true });
    }
  }

  /** Drops the temp file. */
  async discard(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => undefined);
    await rm(this.#path, { force: true });
  }

  #noted(err: FerryError): FerryError {
    this.#place.pressure.observe(err);
    return err;
  }

  #requireOpen(): FileHandle {
    if (this.#file === undefined) throw new FerryError("FERRY_INTERNAL", "ingest is sealed");
    return this.#file;
  }
}
