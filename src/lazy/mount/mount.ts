// `ferry mount`: an eStargz image as a read-only FUSE filesystem, contents fetched on first
// read (verified, cached in the store), the prioritized files prefetched in the background.
import { join } from "node:path";
import type { Platform } from "../../oci/index.ts";
import type { RegistryClient, Repository } from "../../registry/index.ts";
import { writeFileAtomic } from "../../store/index.ts";
import type { Chunk } from "../toc.ts";
import { ChunkStore } from "./chunks.ts";
import { Filesystem } from "./filesystem.ts";
import { FuseSession } from "./fuse-session.ts";
import { type MountImage, openMountImage, type RunConfig } from "./image.ts";
import { buildTree, type FsTree, type MountEntry } from "./tree.ts";

export type MountEvent =
  | { type: "mounted"; dir: string; layers: number; inodes: number }
  | { type: "prefetch-done"; files: number; chunks: number; bytes: number; ms: number }
  | { type: "prefetch-failed"; path: string; error: unknown }
  | { type: "read-failed"; path: string; error: unknown }
  | { type: "internal-error"; error: unknown };

export interface MountOptions {
  registry: RegistryClient;
  repository: Repository;
  /** Tag or digest. */
  reference: string;
  dir: string;
  /** The ferry store; verified chunks are cached under STORE/ferry/lazy-chunks. */
  storeDir: string;
  platform?: Platform | undefined;
  /** Fetch the files before the prefetch landmark right after mounting (default true). */
  prefetch?: boolean;
  /** Write the paths of files read, in first-read order, to this file. */
  recordFile?: string | undefined;
  /** A chunk fetch that receives no bytes for this long fails, and its read gets EIO (default 10 s). */
  fetchTimeoutMs?: number;
  onEvent?: (event: MountEvent) => void;
  signal?: AbortSignal | undefined;
}

export interface MountStats {
  /** Compressed bytes fetched from the registry for file contents (not counting TOCs). */
  readonly fetchedBytes: number;
  readonly fetchedChunks: number;
  readonly cachedChunks: number;
  /** Bytes fetched for the layers' footers and TOCs when mounting. */
  readonly tocBytes: number;
  readonly layerBytes: number;
}

const DEFAULT_FETCH_TIMEOUT_MS = 10_000;
const PREFETCH_CONCURRENCY = 4;
/** Compressed bytes one prefetch range request covers at most. */
const MAX_RUN_BYTES = 4 * 1024 * 1024;
const RECORD_FLUSH_MS = 200;
const PREFETCH_LANDMARK = ".prefetch.landmark";

export class LazyMount {
  readonly image: MountImage;
  readonly tree: FsTree;
  readonly #session: FuseSession;
  readonly #chunks: ChunkStore;
  readonly #record: Recorder | undefined;
  /** Resolves once the prefetch is over (at once without one). */
  readonly prefetched: Promise<void>;
  /** Resolves when the filesystem is gone (unmounted by anyone). */
  readonly closed: Promise<void>;

  private constructor(parts: {
    image: MountImage;
    tree: FsTree;
    session: FuseSession;
    chunks: ChunkStore;
    record: Recorder | undefined;
    prefetched: Promise<void>;
  }) {
    this.image = parts.image;
    this.tree = parts.tree;
    this.#session = parts.session;
    this.#chunks = parts.chunks;
    this.#record = parts.record;
    this.prefetched = parts.prefetched;
    // Closed once the trace and the chunks fetched so far are on disk.
    this.closed = parts.session.closed.finally(() =>
      Promise.all([this.#record?.flush(), parts.chunks.flushed()]),
    );
  }

  get config(): RunConfig {
    return this.image.config;
  }

  get dir(): string {
    return this.#session.dir;
  }

  stats(): MountStats {
    return {
      fetchedBytes: this.#chunks.fetchedBytes,
      fetchedChunks: this.#chunks.fetchedChunks,
      cachedChunks: this.#chunks.diskHits,
      tocBytes: this.image.layers.reduce((n, l) => n + l.tocBytes, 0),
      layerBytes: this.image.layers.reduce((n, l) => n + l.descriptor.size, 0),
    };
  }

  /** Unmounts (detaching a busy mount) and waits until the record file is written. */
  async unmount(): Promise<void> {
    await this.#session.unmount();
    await this.closed;
  }

  static async mount(options: MountOptions): Promise<LazyMount> {
    const emit = options.onEvent ?? (() => undefined);
    const image = await openMountImage(options);
    const tree = buildTree(image.layers.map((l) => l.entries));
    const chunks = new ChunkStore({
      registry: options.registry,
      repository: options.repository,
      layers: image.layers.map((l) => ({ digest: l.descriptor.digest, size: l.descriptor.size })),
      cacheDir: join(options.storeDir, "ferry", "lazy-chunks"),
      fetchTimeoutMs: options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
      signal: options.signal,
    });
    const record = options.recordFile === undefined ? undefined : new Recorder(options.recordFile);
    const fs = new Filesystem(tree, {
      chunk: async (layer: number, chunk: Chunk, path: string) => {
        try {
          return await chunks.get(layer, chunk, path);
        } catch (error) {
          emit({ type: "read-failed", path, error });
          throw error;
        }
      },
      firstRead: (path) => record?.add(path),
    });
    const session = await FuseSession.mount(options.dir, {
      source: `ferry:${options.repository.domain}/${options.repository.path}`,
      handler: fs.handle,
      onError: (error) => emit({ type: "internal-error", error }),
    });
    emit({
      type: "mounted",
      dir: options.dir,
      layers: image.layers.length,
      inodes: tree.nodes.length - 1,
    });
    const prefetched =
      options.prefetch === false ? Promise.resolve() : prefetch(image, chunks, emit);
    return new LazyMount({ image, tree, session, chunks, record, prefetched });
  }
}

/** The files each layer lists before its prefetch landmark, in TOC order. */
export function prioritized(
  layers: readonly { readonly entries: readonly MountEntry[] }[],
): Array<{ layer: number; entry: MountEntry }> {
  const out: Array<{ layer: number; entry: MountEntry }> = [];
  layers.forEach((l, layer) => {
    const at = l.entries.findIndex((e) => e.path === PREFETCH_LANDMARK);
    if (at < 0) return;
    for (const entry of l.entries.slice(0, at))
      if (entry.type === "reg" && entry.chunks.length > 0) out.push({ layer, entry });
  });
  return out;
}

/** A prefetch unit: chunks fetched with one range request, or one large chunk streamed. */
export interface PrefetchRun {
  layer: number;
  items: Array<{ chunk: Chunk; path: string }>;
  /**
   * One chunk whose compressed span is larger than a run may be: fetched like a read
   * (streamed and decompressed only as far as needed), never held whole in memory.
   */
  stream: boolean;
}

/**
 * Runs of prioritized chunks that lie back to back in one layer, each fetched with one range
 * request of at most `maxRunBytes`; a chunk wider than that on its own is streamed instead.
 */
export function prefetchRuns(
  files: ReadonlyArray<{ layer: number; entry: MountEntry }>,
  maxRunBytes = MAX_RUN_BYTES,
): PrefetchRun[] {
  const byLayer = new Map<number, Array<{ chunk: Chunk; path: string }>>();
  for (const { layer, entry } of files) {
    const list = byLayer.get(layer) ?? [];
    for (const chunk of entry.chunks) list.push({ chunk, path: entry.path });
    byLayer.set(layer, list);
  }
  const runs: PrefetchRun[] = [];
  for (const [layer, list] of byLayer) {
    list.sort((a, b) => a.chunk.offset - b.chunk.offset);
    let run: Array<{ chunk: Chunk; path: string }> = [];
    for (const item of list) {
      const first = run[0];
      const last = run[run.length - 1];
      const adjacent = last !== undefined && item.chunk.offset <= last.chunk.end;
      if (first !== undefined && (!adjacent || item.chunk.end - first.chunk.offset > maxRunBytes)) {
        runs.push({ layer, items: run, stream: false });
        run = [];
      }
      if (item.chunk.end - item.chunk.offset > maxRunBytes) {
        runs.push({ layer, items: [item], stream: true });
        continue;
      }
      run.push(item);
    }
    if (run.length > 0) runs.push({ layer, items: run, stream: false });
  }
  return runs;
}

/** Fetches the prioritized files of `image`'s layers in the background of a mount. */
export async function prefetch(
  image: Pick<MountImage, "layers">,
  chunks: ChunkStore,
  emit: (event: MountEvent) => void,
): Promise<void> {
  const started = performance.now();
  const files = prioritized(image.layers);
  const runs = prefetchRuns(files);
  const before = chunks.fetchedBytes;
  const count = runs.reduce((n, r) => n + r.items.length, 0);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < runs.length && !failed) {
      const run = runs[next++] as (typeof runs)[number];
      try {
        await chunks.writeRoom();
        if (run.stream) {
          for (const { chunk, path } of run.items) await chunks.prefetchOne(run.layer, chunk, path);
        } else await chunks.prefetchRun(run.layer, run.items);
      } catch (error) {
        // The reads that need these chunks will try again (and fail with EIO if they must).
        failed = true;
        emit({
          type: "prefetch-failed",
          path: run.items[0]?.path ?? "",
          error,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: PREFETCH_CONCURRENCY }, worker));
  if (!failed)
    emit({
      type: "prefetch-done",
      files: files.length,
      chunks: count,
      bytes: chunks.fetchedBytes - before,
      ms: Math.round(performance.now() - started),
    });
}

/** The `--record` trace: paths in first-read order, rewritten atomically as it grows. */
class Recorder {
  readonly #file: string;
  readonly #paths: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.#file = file;
  }

  add(path: string): void {
    this.#paths.push(path);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, RECORD_FLUSH_MS);
  }

  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const text = this.#paths.map((p) => `${p}\n`).join("");
    this.#writing = this.#writing
      .then(() => writeFileAtomic(this.#file, text))
      .catch(() => undefined);
    return this.#writing;
  }
}
