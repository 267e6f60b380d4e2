// Verified chunks of eStargz layers: fetched once, shared by every reader that wants them
// (concurrent reads of one chunk wait for the same fetch), kept on disk under the store and
// a few in memory. A chunk is content-addressed by its chunkDigest, so a cached file is
// re-verified by hashing it; no byte reaches a reader before its digest matched.
import { createHash } from "node:crypto";
import { access, chmod, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
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
  /** Idle timeout: a fetch that receives no bytes for this long fails (the read gets EIO). */
  fetchTimeoutMs: number;
  /** Bytes of verified chunks kept in memory. */
  memoryBytes?: number;
  /** Bytes of verified chunks waiting for the disk cache at most; cache writes beyond are dropped. */
  writeBacklogBytes?: number;
  signal?: AbortSignal | undefined;
}

const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
const DEFAULT_WRITE_BACKLOG_BYTES = 32 * 1024 * 1024;

export class ChunkStore {
  readonly #options: ChunkStoreOptions;
  readonly #inflight = new Map<string, Promise<Buffer>>();
  /** Digests whose in-flight fetch is a prefetch run's (a read joining one retries on failure). */
  readonly #prefetching = new Set<string>();
  readonly #memory = new Map<string, Buffer>();
  /** Verified chunks on their way to the disk cache. */
  readonly #writing = new Map<string, Buffer>();
  #writes: Promise<void> = Promise.resolve();
  #memoryUsed = 0;
  #writingBytes = 0;
  /** Verified chunks not written to the disk cache because the write backlog was full. */
  droppedWrites = 0;
  /** Compressed bytes received from the registry. */
  fetchedBytes = 0;
  /** Chunks taken from the registry / from the disk cache. */
  fetchedChunks = 0;
  diskHits = 0;

  constructor(options: ChunkStoreOptions) {
    this.#options = options;
  }

  /** Bytes the memory cache accounts for (never more than its cap). */
  get memoryBytes(): number {
    return this.#memoryUsed;
  }

  /** Bytes the memory cache actually holds (equal to memoryBytes). */
  memoryHeld(): number {
    let n = 0;
    for (const b of this.#memory.values()) n += b.length;
    return n;
  }

  /** Bytes of verified chunks queued for the disk cache. */
  get writeBacklogBytes(): number {
    return this.#writingBytes;
  }

  /** Whether a fetch of this chunk is under way. */
  fetching(digest: string): boolean {
    return this.#inflight.has(digest);
  }

  /** The chunk's verified bytes; fetches it when neither memory nor disk has it. */
  get(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    return this.#get(layer, chunk, path, true);
  }

  #get(layer: number, chunk: Chunk, path: string, retry: boolean): Promise<Buffer> {
    const d = chunk.digest;
    const hit = this.#memory.get(d);
    if (hit !== undefined) {
      this.#memory.delete(d);
      this.#memory.set(d, hit);
      return Promise.resolve(hit);
    }
    // On its way to disk: served as is, not moved into the memory cache (whose bytes it would not count).
    const queued = this.#writing.get(d);
    if (queued !== undefined) return Promise.resolve(queued);
    const pending = this.#inflight.get(d);
    if (pending !== undefined) {
      if (!this.#prefetching.has(d)) return pending;
      // A failed prefetch (a run cut short, a timeout) is not this read's failure: it tries once itself.
      if (retry) return pending.catch(() => this.#get(layer, chunk, path, false));
      return this.#load(layer, chunk, path);
    }
    return this.#register(d, this.#load(layer, chunk, path), false);
  }

  /**
   * Prefetches one chunk as a read would fetch it (streamed, decompressed only as far as
   * needed): for chunks too wide for a run. Reads that join it retry if it fails.
   */
  prefetchOne(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    const d = chunk.digest;
    if (this.#memory.has(d) || this.#writing.has(d) || this.#inflight.has(d))
      return this.get(layer, chunk, path);
    return this.#register(d, this.#load(layer, chunk, path), true);
  }

  #register(digest: string, load: Promise<Buffer>, prefetch: boolean): Promise<Buffer> {
    const pending = load.finally(() => {
      this.#inflight.delete(digest);
      this.#prefetching.delete(digest);
    });
    this.#inflight.set(digest, pending);
    if (prefetch) this.#prefetching.add(digest);
    return pending;
  }

  async #load(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    let bytes = await this.#fromDisk(chunk);
    if (bytes !== undefined) this.diskHits++;
    else {
      bytes = await this.#fetch(layer, chunk, path);
      this.fetchedChunks++;
      this.#persist(chunk, bytes);
    }
    this.#remember(chunk.digest, bytes);
    return bytes;
  }

  /**
   * Fetches a run of chunks of one layer that lie next to each other in the blob with one
   * range request (the prefetch of many small prioritized files), verifying each.
   * Chunks already cached or being fetched are left out. Resolves when all are settled.
   */
  async prefetchRun(layer: number, run: readonly { chunk: Chunk; path: string }[]): Promise<void> {
    const candidates: { chunk: Chunk; path: string }[] = [];
    const digests = new Set<string>();
    for (const item of run) {
      if (digests.has(item.chunk.digest) || (await exists(this.#file(item.chunk)))) continue;
      digests.add(item.chunk.digest);
      candidates.push(item);
    }
    // From here on nothing awaits until the fetches are registered, so no read slips in between.
    const wanted = candidates.filter(({ chunk: { digest: d } }) => {
      return !this.#memory.has(d) && !this.#writing.has(d) && !this.#inflight.has(d);
    });
    if (wanted.length === 0) return;
    const fetched = this.#fetchRun(layer, wanted);
    fetched.catch(() => undefined);
    const settled = wanted.map(({ chunk, path }) => {
      const one = fetched.then(async (bytes) => {
        const piece = await verifiedPiece(bytes, chunk, path, this.#options.layers[layer]?.digest);
        this.fetchedChunks++;
        this.#persist(chunk, piece);
        this.#remember(chunk.digest, piece);
        return piece;
      });
      return this.#register(chunk.digest, one, true);
    });
    const results = await Promise.allSettled(settled);
    const failed = results.find((r) => r.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  /** The compressed bytes of [first chunk's offset, last chunk's end), sliced per chunk. */
  async #fetchRun(
    layer: number,
    run: readonly { chunk: Chunk; path: string }[],
  ): Promise<Map<Chunk, Buffer>> {
    const start = Math.min(...run.map((r) => r.chunk.offset));
    const end = Math.max(...run.map((r) => r.chunk.end));
    const bytes = await this.#withTimeout(layer, run[0]?.path ?? "", (ranges) =>
      ranges.read(start, end),
    );
    const out = new Map<Chunk, Buffer>();
    for (const { chunk } of run)
      out.set(chunk, bytes.subarray(chunk.offset - start, chunk.end - start));
    return out;
  }

  /**
   * Writes a verified chunk to the disk cache in the background, one file at a time. When the
   * backlog is full (a disk slower than the network) the write is dropped: it only costs a refetch.
   */
  #persist(chunk: Chunk, bytes: Buffer): void {
    const d = chunk.digest;
    if (this.#writing.has(d)) return;
    const cap = this.#options.writeBacklogBytes ?? DEFAULT_WRITE_BACKLOG_BYTES;
    if (this.#writingBytes + bytes.length > cap) {
      this.droppedWrites++;
      return;
    }
    this.#writing.set(d, bytes);
    this.#writingBytes += bytes.length;
    this.#writes = this.#writes
      .then(async () => {
        await this.#cacheDirReady();
        // Chunks are pieces of image files that may be 0600: readable by root only.
        await writeFileAtomic(this.#file(chunk), bytes, 0o600);
      })
      .catch(() => undefined) // a cache that cannot be written only costs a refetch
      .finally(() => {
        this.#writing.delete(d);
        this.#writingBytes -= bytes.length;
      });
  }

  /**
   * Creates the cache directory private to root (again if someone removed it; an older,
   * wider one is made private). Two cheap calls next to a write's fsync.
   */
  async #cacheDirReady(): Promise<void> {
    await mkdir(this.#options.cacheDir, { recursive: true, mode: 0o700 });
    await chmod(this.#options.cacheDir, 0o700);
  }

  /** Resolves when the chunks fetched so far are on disk. */
  flushed(): Promise<void> {
    return this.#writes;
  }

  /**
   * Resolves once the disk cache's backlog is at most half full: the prefetcher waits for it
   * between runs so that its chunks are cached rather than dropped (reads never wait).
   */
  async writeRoom(): Promise<void> {
    const cap = this.#options.writeBacklogBytes ?? DEFAULT_WRITE_BACKLOG_BYTES;
    while (this.#writingBytes > cap / 2) await this.#writes;
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

  #fetch(layer: number, chunk: Chunk, path: string): Promise<Buffer> {
    return this.#withTimeout(layer, path, (ranges) => ranges.chunk(chunk, path));
  }

  /**
   * Runs `work` with a range reader of the layer whose requests end once no byte has arrived for
   * the fetch timeout (an idle timeout: a slow but moving transfer is never cut).
   */
  async #withTimeout<T>(
    layer: number,
    path: string,
    work: (ranges: RangeReader) => Promise<T>,
  ): Promise<T> {
    const l = this.#options.layers[layer];
    if (l === undefined) throw new Error(`no layer ${layer}`);
    const idle = new AbortController();
    const timeout = idle.signal;
    const timer = setTimeout(() => idle.abort(), this.#options.fetchTimeoutMs);
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
      onBytes: () => timer.refresh(),
    });
    // The race bounds the wait even when a stalled body ignores the abort.
    let onAbort: (() => void) | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () => reject(new Error("timed out"));
      timeout.addEventListener("abort", onAbort, { once: true });
    });
    timedOut.catch(() => undefined);
    try {
      return await Promise.race([work(ranges), timedOut]);
    } catch (err) {
      if (timeout.aborted)
        throw new FerryError(
          "FERRY_TIMEOUT",
          `fetching a chunk of ${path} (layer ${l.digest}): no bytes received for ${this.#options.fetchTimeoutMs} ms`,
          {
            hint: "is the registry reachable? (--fetch-timeout sets how long a fetch may receive nothing)",
            cause: err,
            fields: { path, layer: l.digest },
          },
        );
      throw err;
    } finally {
      clearTimeout(timer);
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

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** A chunk's piece out of its gzip member (already fetched), returned once its sha256 matches. */
async function verifiedPiece(
  runBytes: Map<Chunk, Buffer>,
  chunk: Chunk,
  path: string,
  layer: string | undefined,
): Promise<Buffer> {
  const member = runBytes.get(chunk) ?? Buffer.alloc(0);
  const want = chunk.innerOffset + chunk.size;
  const out: Buffer[] = [];
  let have = 0;
  const gunzip = createGunzip();
  await new Promise<void>((resolve, reject) => {
    gunzip.on("data", (b: Buffer) => {
      out.push(b);
      have += b.length;
      // The member also holds the next entry's tar header: stop once the piece is in.
      if (have >= want) {
        gunzip.destroy();
        resolve();
      }
    });
    gunzip.on("end", () => resolve());
    gunzip.on("error", (cause) =>
      reject(
        new FerryError(
          "FERRY_DIGEST_MISMATCH",
          `chunk of ${path} at offset ${chunk.offset} of layer ${layer} is not valid gzip`,
          {
            hint: "the layer is corrupt, or something between you and the registry altered it",
            cause,
          },
        ),
      ),
    );
    gunzip.end(member);
  });
  const piece = Buffer.concat(out).subarray(chunk.innerOffset, want);
  const actual = sha256(piece);
  if (piece.length !== chunk.size || actual !== chunk.digest)
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `chunk of ${path} at byte ${chunk.chunkOffset} (layer ${layer}) does not match its chunkDigest ${chunk.digest} (got ${actual})`,
      {
        hint: "the layer is corrupt, or something between you and the registry altered it; nothing of this chunk was used",
        fields: { layer, path, expected: chunk.digest, actual },
      },
    );
  return piece;
}
