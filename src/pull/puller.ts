import { stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { hasShaInstructions } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import { type Descriptor, hostPlatform, type Platform, resolveImage } from "../oci/index.ts";
import { formatReference, parseReference, type Reference } from "../reference/index.ts";
import {
  type KnownManifest,
  MAX_MANIFEST_BYTES,
  type RegistryClient,
  RegistrySource,
  type Repository,
} from "../registry/index.ts";
import type { ImageRecord, Store } from "../store/index.ts";
import type { PullEvent, PullSummary } from "./events.ts";
import {
  type BlobOutcome,
  type DownloadContext,
  downloadBlob,
  type TransferUpdate,
} from "./fetch-blob.ts";
import { Limiter } from "./limiter.ts";
import { SinkPool } from "./sink-pool.ts";
import type { BlobLocator } from "./blob-locator.ts";

export interface PullerOptions {
  registry: RegistryClient;
  store: Store;
  /** Blobs downloading at once, across every image this Puller pulls. */
  concurrency?: number;
  platform?: Platform;
  /** Worker threads that hash and write; defaults to one per core. */
  pool?: SinkPool;
  /**
   * Hash and write blobs on worker threads: "auto" does so only on CPUs without
   * SHA instructions, where sha256 is slower than the network on loopback.
   */
  hashWorkers?: "auto" | "always" | "never";
  /** Even with hash workers, blobs smaller than this stay on the main thread (a worker round trip costs more). */
  inlineBelow?: number;
  /** Asked before the upstream for each blob (node-to-node sharing); see blob-locator.ts. */
  blobLocator?: BlobLocator;
}

export interface PullOptions {
  onEvent?: (event: PullEvent) => void;
  signal?: AbortSignal;
  platform?: Platform;
}

export const DEFAULT_CONCURRENCY = 4;
const DEFAULT_INLINE_BELOW = 1 << 20;

/**
 * The pull engine: resolve → plan the blobs the store lacks → fetch them in
 * parallel under one limit (each digest once, even across concurrent pulls)
 * → verify → commit → record the image.
 */
export class Puller {
  readonly #registry: RegistryClient;
  readonly #store: Store;
  readonly #limiter: Limiter;
  readonly #platform: Platform;
  readonly #pool: SinkPool;
  readonly #ownsPool: boolean;
  readonly #hashWorkers: "auto" | "always" | "never";
  readonly #inlineBelowOption: number | undefined;
  /** Blobs smaller than this are hashed on this thread; decided at the first download. */
  #inlineBelowCached: number | undefined;
  readonly #blobLocator: BlobLocator | undefined;
  readonly #inflight = new Map<string, Promise<BlobOutcome>>();
  /** Listeners for the bytes an ingest file holds, per digest (the mirror streams from it). */
  readonly #watchers = new Map<string, Set<(current: number) => void>>();

  constructor(options: PullerOptions) {
    this.#registry = options.registry;
    this.#store = options.store;
    this.#limiter = new Limiter(options.concurrency ?? DEFAULT_CONCURRENCY);
    this.#platform = options.platform ?? hostPlatform();
    this.#ownsPool = options.pool === undefined;
    this.#pool =
      options.pool ??
      new SinkPool(Math.min(options.concurrency ?? DEFAULT_CONCURRENCY, availableParallelism()));
    this.#hashWorkers = options.hashWorkers ?? "auto";
    this.#inlineBelowOption = options.inlineBelow;
    this.#blobLocator = options.blobLocator;
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.close();
  }

  /** Not in the constructor: reading /proc/cpuinfo is wasted on a pull with nothing to fetch. */
  get #inlineBelow(): number {
    if (this.#inlineBelowCached === undefined) {
      const workers = this.#hashWorkers;
      const offload = workers === "always" || (workers === "auto" && !hasShaInstructions());
      this.#inlineBelowCached = offload
        ? (this.#inlineBelowOption ?? DEFAULT_INLINE_BELOW)
        : Number.POSITIVE_INFINITY;
    }
    return this.#inlineBelowCached;
  }

  async pull(input: string | Reference, options: PullOptions = {}): Promise<PullSummary> {
    const started = process.hrtime.bigint(); // not performance.now(): that loads perf_hooks, ~2 ms
    const ref = typeof input === "string" ? parseReference(input) : input;
    const name = formatReference(ref);
    const repo: Repository = { domain: ref.domain, path: ref.path };
    const onEvent = options.onEvent ?? (() => {});
    // A failed pull says nothing more: blob fetches in flight when it failed finish silently.
    let failed = false;
    const emit = (event: PullEvent) => {
      if (!failed) onEvent(event);
    };
    const fail = (err: unknown): never => {
      failed = true;
      throw err;
    };
    const signal = options.signal;

    // What the store records under this name, read once: the registry's answer is compared
    // with its manifest, and an unchanged image is answered from it. A failure to read it is
    // the pull's error where it is awaited (#alreadyPresent), not an unhandled one before.
    const recorded = this.#store.findImage(name);
    recorded.catch(() => {});
    const resolved = await resolveImage(
      new RegistrySource(
        this.#registry,
        repo,
        this.#storedManifest(recorded, ref.digest).catch(() => undefined),
      ),
      ref.digest ?? ref.tag ?? "latest",
      options.platform ?? this.#platform,
      {
        signal,
        name,
        // Content-addressed: a child manifest already stored (verified then) is not asked for
        // again, unless it went (a concurrent garbage collection) between the check and the read.
        held: async (chosen) =>
          (await this.#store.hasBlob(chosen.digest, chosen.size))
            ? await this.#store.readBlob(chosen.digest).catch(() => undefined)
            : undefined,
        onTop: (top) => {
          if (ref.digest !== undefined && top.digest !== ref.digest) {
            throw new FerryError(
              "FERRY_DIGEST_MISMATCH",
              `registry returned ${top.digest} for ${name}`,
            );
          }
          emit({ type: "resolved", reference: name, digest: top.digest, mediaType: top.mediaType });
        },
      },
    );
    const { top, descriptor, manifest } = resolved;
    const manifestBytes = resolved.bytes;
    const indexBlobs: Array<{ digest: string; bytes: Buffer }> =
      resolved.index === undefined ? [] : [{ digest: top.digest, bytes: top.bytes }];
    const blobs: Array<{ desc: Descriptor; kind: "config" | "layer" }> = [
      { desc: manifest.config, kind: "config" },
      ...manifest.layers.map((desc) => ({ desc, kind: "layer" as const })),
    ];

    const present = await this.#alreadyPresent(recorded, top.digest, descriptor, indexBlobs, blobs);
    if (present) {
      for (const { desc, kind } of blobs) {
        emit({
          type: "blob",
          reference: name,
          digest: desc.digest,
          kind,
          size: desc.size,
          status: "exists",
        });
      }
      await this.#store.touch(name); // a pull of a present image counts as a use
      return {
        reference: name,
        digest: top.digest,
        manifestDigest: descriptor.digest,
        status: "up-to-date",
        bytesDownloaded: 0,
        blobsDownloaded: 0,
        blobsSkipped: blobs.length,
        seconds: secondsSince(started),
      };
    }

    // Garbage collection spares leased digests: take the lease before checking for any blob,
    // release it once the image is recorded (see store/lease.ts).
    const lease = await this.#store.lease(name, [
      ...indexBlobs.map((b) => b.digest),
      descriptor.digest,
      ...blobs.map((b) => b.desc.digest),
    ]);
    try {
      const outcomes = await Promise.all(
        blobs.map(async ({ desc, kind }) => {
          const base = {
            type: "blob" as const,
            reference: name,
            digest: desc.digest,
            kind,
            size: desc.size,
          };
          // Each await of a blob's task fails the pull at once (not when Promise.all settles).
          if (await this.#store.hasBlob(desc.digest, desc.size).catch(fail)) {
            emit({ ...base, status: "exists" });
            return { downloaded: false, fetched: 0 };
          }
          emit({ ...base, status: "waiting" });
          const outcome = await this.#fetchOnce(
            repo,
            desc,
            (u) =>
              emit(
                u.status === "retrying"
                  ? {
                      type: "retry",
                      reference: name,
                      digest: desc.digest,
                      attempt: u.attempt,
                      reason: u.reason,
                    }
                  : { ...base, status: u.status, current: u.current },
              ),
            signal,
          ).catch(fail);
          emit({ ...base, status: outcome.downloaded ? "complete" : "exists", current: desc.size });
          return outcome;
        }),
      );

      const existing = await this.#store.findImage(name);
      const hadManifest = await this.#store.hasBlob(descriptor.digest, descriptor.size);
      for (const b of indexBlobs) await this.#store.writeBlob(b.digest, b.bytes);
      await this.#store.writeBlob(descriptor.digest, manifestBytes);
      const blobsDownloaded = outcomes.filter((o) => o.downloaded).length;
      const upToDate =
        blobsDownloaded === 0 &&
        hadManifest &&
        existing?.sourceDigest === top.digest &&
        existing.descriptor.digest === descriptor.digest;
      if (!upToDate) await this.#store.recordImage(name, descriptor, top.digest);
      else await this.#store.touch(name); // a pull of a present image counts as a use
      return {
        reference: name,
        digest: top.digest,
        manifestDigest: descriptor.digest,
        status: upToDate ? "up-to-date" : "downloaded",
        bytesDownloaded: outcomes.reduce((sum, o) => sum + o.fetched, 0),
        bytesFromPeers: outcomes.reduce((sum, o) => sum + (o.fromPeers ?? 0), 0),
        blobsDownloaded,
        blobsSkipped: blobs.length - blobsDownloaded,
        seconds: secondsSince(started),
      };
    } finally {
      await lease.release();
    }
  }

  /**
   * The stored manifest the name was last pulled as (its `recorded` entry), or the one `digest`
   * names, if the store holds it: the registry's answer is compared with it instead of hashed.
   */
  async #storedManifest(
    recorded: Promise<ImageRecord | undefined>,
    digest: string | undefined,
  ): Promise<KnownManifest | undefined> {
    const want = digest ?? (await recorded)?.sourceDigest;
    // A pull by digest may name any blob, a layer too: only a manifest-sized one is read.
    if (want === undefined) return undefined;
    const size = await stat(this.#store.blobPath(want)).then(
      (s) => s.size,
      () => -1,
    );
    if (size < 0 || size > MAX_MANIFEST_BYTES) return undefined;
    const bytes = await this.#store.readBlob(want).catch(() => undefined);
    return bytes === undefined ? undefined : { digest: want, bytes };
  }

  /**
   * The up-to-date case, without lease or index lock: the name already records this
   * manifest and every blob is in place. No lease is needed because the recorded image
   * is itself a garbage-collection root for all of them.
   */
  async #alreadyPresent(
    recorded: Promise<ImageRecord | undefined>,
    sourceDigest: string,
    descriptor: Descriptor,
    indexBlobs: ReadonlyArray<{ digest: string; bytes: Buffer }>,
    blobs: ReadonlyArray<{ desc: Descriptor }>,
  ): Promise<boolean> {
    const existing = await recorded;
    if (existing?.sourceDigest !== sourceDigest || existing.descriptor.digest !== descriptor.digest)
      return false;
    const wanted: Array<[string, number]> = [
      ...indexBlobs.map((b): [string, number] => [b.digest, b.bytes.length]),
      [descriptor.digest, descriptor.size],
      ...blobs.map(({ desc }): [string, number] => [desc.digest, desc.size]),
    ];
    const found = await Promise.all(wanted.map(([d, size]) => this.#store.hasBlob(d, size)));
    return found.every(Boolean);
  }

  /**
   * Makes sure one blob is in the store: single flight with every pull of this
   * process, ingest lock across processes. While it downloads, `watch` hears
   * how many bytes its ingest file (`store.ingestPath`) holds, so a caller can
   * stream them on before the blob is verified and committed.
   */
  async ensureBlob(
    repo: Repository,
    desc: Descriptor,
    options: { watch?: (current: number) => void; signal?: AbortSignal } = {},
  ): Promise<{ downloaded: boolean; fetched: number }> {
    if (await this.#store.hasBlob(desc.digest, desc.size)) return { downloaded: false, fetched: 0 };
    const watch = options.watch;
    let set = this.#watchers.get(desc.digest);
    if (watch !== undefined) {
      if (set === undefined) {
        set = new Set();
        this.#watchers.set(desc.digest, set);
      }
      set.add(watch);
    }
    try {
      return await this.#fetchOnce(repo, desc, () => {}, options.signal);
    } finally {
      if (watch !== undefined && set !== undefined) {
        set.delete(watch);
        if (set.size === 0) this.#watchers.delete(desc.digest);
      }
    }
  }

  #downloadContext(): DownloadContext {
    return {
      registry: this.#registry,
      store: this.#store,
      pool: this.#pool,
      inlineBelow: this.#inlineBelow,
      blobLocator: this.#blobLocator,
      watchers: this.#watchers,
    };
  }

  #fetchOnce(
    repo: Repository,
    desc: Descriptor,
    emit: (e: TransferUpdate) => void,
    signal: AbortSignal | undefined,
  ): Promise<BlobOutcome> {
    let flight = this.#inflight.get(desc.digest);
    if (flight === undefined) {
      flight = this.#limiter
        .run(() => downloadBlob(this.#downloadContext(), repo, desc, emit, signal))
        .finally(() => this.#inflight.delete(desc.digest));
      this.#inflight.set(desc.digest, flight);
      return flight;
    }
    return flight.then(() => ({ downloaded: false, fetched: 0 }));
  }
}

/** Seconds since a process.hrtime.bigint() reading, to the millisecond. */
function secondsSince(started: bigint): number {
  return Number((process.hrtime.bigint() - started) / 1_000_000n) / 1000;
}
