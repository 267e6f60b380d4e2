// Verified chunks of eStargz layers: fetched once, shared by every reader that wants them
// (concurrent reads of one chunk wait for the same fetch), kept on disk under the store and
// a few in memory. A chunk is content-addressed by its chunkDigest, so a cached file is
// re-verified by hashing it; no byte reaches a reader before its digest matched.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { FerryError } from "../../observe/index.ts";
import type { RegistryClient, Repository } from "../../registry/index.ts";
import { writeFileAtomic } from "../../store/index.ts";
import { RangeReader } from "../fetch.ts";
import type { Chunk } from "../toc.ts";

export interface ChunkLayer {
  readonly digest: string;
  readonly size: number;
}

export interface ChunkStoreOptions {
  registry: RegistryClient;
  repository: Repository;
  layers: readonly ChunkLayer[];
  /** Directory of the on-disk cache (e.g. STORE/lazy/chunks). */
  cacheDir: string;
  /** A fetch that has not finished after this long fails (the read gets EIO). */
  fetchTimeoutMs: number;
  /** Bytes of verified chunks kept in memory. */
  memoryBytes?: number;
  signal?: AbortSignal | undefined;
}

const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

export class ChunkStore {
  readonly #options: ChunkStoreOptions;
  readonly #inflight = new Map<string, Promise<Buffer>>();
  readonly #memory = new Map<string, Buffer>();
  #memoryUsed = 0;
  /** Compressed bytes received from the registry. */
  fetchedBytes = 0;
  /** Chunks taken from the registry / from the disk cache. */
  fetchedChunks = 0;
  diskHits = 0;

  constructor(options: ChunkStoreOptions) {
    this.#options = options;
  }

  /** Whether the chunk is ready without the network (memory or disk). */
  async has(chunk: Chunk): Promise<boolean> {
    if (this.#memory.has(chunk.digest)) return true;
    return (await this.#fromDisk(chunk)) !== undefined;
  }

  /** The chunk's verified bytes; fetches it when neither memory nor disk has it. */
  get(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    const hit = this.#memory.get(chunk.digest);
    if (hit !== undefined) {
      this.#memory.delete(chunk.digest);
      this.#memory.set(chunk.digest, hit);
      return Promise.resolve(hit);
    }
    let pending = this.#inflight.get(chunk.digest);
    if (pending === undefined) {
      pending = this.#load(layer, chunk, path).finally(() => this.#inflight.delete(chunk.digest));
      this.#inflight.set(chunk.digest, pending);
    }
    return pending;
  }

  async #load(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    let bytes = await this.#fromDisk(chunk);
    if (bytes !== undefined) this.diskHits++;
    else {
      bytes = await this.#fetch(layer, chunk, path);
      this.fetchedChunks++;
      await mkdir(this.#options.cacheDir, { recursive: true });
      await writeFileAtomic(this.#file(chunk), bytes);
    }
    this.#remember(chunk.digest, bytes);
    return bytes;
  }

  #file(chunk: Chunk): string {
    return join(this.#options.cacheDir, chunk.digest.replace(":", "-"));
  }

  async #fromDisk(chunk: Chunk): Promise<Buffer | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#file(chunk));
    } catch {
      return undefined;
    }
    if (sha256(bytes) === chunk.digest) return bytes;
    // A damaged cache file is dropped and fetched again, never served.
    await rm(this.#file(chunk), { force: true });
    return undefined;
  }

  async #fetch(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    const l = this.#options.layers[layer];
    if (l === undefined) throw new Error(`no layer ${layer}`);
    const timeout = AbortSignal.timeout(this.#options.fetchTimeoutMs);
    const signal =
      this.#options.signal === undefined
        ? timeout
        : AbortSignal.any([timeout, this.#options.signal]);
    const ranges = new RangeReader({
      registry: this.#options.registry,
      repository: this.#options.repository,
      digest: l.digest,
      size: l.size,
      signal,
    });
    // The race bounds the wait even when a stalled body ignores the abort.
    let onAbort: (() => void) | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () => reject(new Error("timed out"));
      timeout.addEventListener("abort", onAbort, { once: true });
    });
    timedOut.catch(() => undefined);
    try {
      return await Promise.race([ranges.chunk(chunk, path), timedOut]);
    } catch (err) {
      if (timeout.aborted)
        throw new FerryError(
          "FERRY_TIMEOUT",
          `fetching a chunk of ${path} (layer ${l.digest}) took longer than ${this.#options.fetchTimeoutMs} ms`,
          { hint: "is the registry reachable?", cause: err, fields: { path, layer: l.digest } },
        );
      throw err;
    } finally {
      if (onAbort !== undefined) timeout.removeEventListener("abort", onAbort);
      this.fetchedBytes += ranges.fetched;
    }
  }

  #remember(digest: string, bytes: Buffer): void {
    const limit = this.#options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
    if (bytes.length > limit) return;
    this.#memory.set(digest, bytes);
    this.#memoryUsed += bytes.length;
    for (const [key, value] of this.#memory) {
      if (this.#memoryUsed <= limit) break;
      this.#memory.delete(key);
      this.#memoryUsed -= value.length;
    }
  }
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
