// One eStargz layer mounted read-only with FUSE as an overlayfs lower directory (a remote
// snapshot): its verified TOC up front, file contents fetched by chunk on first read, verified
// and cached in the store like `ferry mount`'s, and its prioritized files prefetched.
import { join } from "node:path";
import type { Descriptor } from "../../oci/index.ts";
import type { RegistryClient, Repository } from "../../registry/index.ts";
import type { Chunk } from "../toc.ts";
import { ChunkStore } from "./chunks.ts";
import { Filesystem } from "./filesystem.ts";
import { FuseSession } from "./fuse-session.ts";
import { type MountLayer, openMountLayer } from "./image.ts";
import { type MountEvent, type MountStats, prefetch } from "./mount.ts";
import { overlayLayerEntries } from "./overlay-layer.ts";
import { buildTree } from "./tree.ts";

export interface LayerMountOptions {
  registry: RegistryClient;
  repository: Repository;
  /** The layer's descriptor from a verified manifest: its TOC digest annotation is checked. */
  descriptor: Descriptor;
  dir: string;
  /** The ferry store; verified chunks are cached under STORE/ferry/lazy-chunks. */
  storeDir: string;
  /** A chunk fetch that receives no bytes for this long fails, and its read gets EIO. */
  fetchTimeoutMs: number;
  /** Fetch the files before the prefetch landmark right after mounting (default true). */
  prefetch?: boolean;
  /** Bytes of verified chunks this layer keeps in memory (default 8 MiB). */
  memoryBytes?: number;
  onEvent?: (event: MountEvent) => void;
  signal?: AbortSignal | undefined;
}

const DEFAULT_MEMORY_BYTES = 8 * 1024 * 1024;

export class LayerMount {
  readonly layer: MountLayer;
  readonly #session: FuseSession;
  readonly #chunks: ChunkStore;
  readonly prefetched: Promise<void>;
  /** Resolves when the filesystem is gone (unmounted by anyone) and its chunks are on disk. */
  readonly closed: Promise<void>;

  private constructor(
    layer: MountLayer,
    session: FuseSession,
    chunks: ChunkStore,
    prefetched: Promise<void>,
  ) {
    this.layer = layer;
    this.#session = session;
    this.#chunks = chunks;
    this.prefetched = prefetched;
    this.closed = session.closed.finally(() => chunks.flushed());
  }

  get dir(): string {
    return this.#session.dir;
  }

  stats(): MountStats {
    return {
      fetchedBytes: this.#chunks.fetchedBytes,
      fetchedChunks: this.#chunks.fetchedChunks,
      cachedChunks: this.#chunks.diskHits,
      tocBytes: this.layer.tocBytes,
      layerBytes: this.layer.descriptor.size,
    };
  }

  async unmount(): Promise<void> {
    await this.#session.unmount();
    await this.closed;
  }

  /** Reads and verifies the layer's TOC, then mounts it at `dir`; throws when it is not eStargz. */
  static async mount(options: LayerMountOptions): Promise<LayerMount> {
    const emit = options.onEvent ?? (() => undefined);
    const { registry, repository, descriptor } = options;
    const layer = await openMountLayer(registry, repository, descriptor, options.signal);
    const tree = buildTree([overlayLayerEntries(layer.entries)]);
    const chunks = new ChunkStore({
      registry,
      repository,
      layers: [{ digest: descriptor.digest, size: descriptor.size }],
      cacheDir: join(options.storeDir, "ferry", "lazy-chunks"),
      fetchTimeoutMs: options.fetchTimeoutMs,
      memoryBytes: options.memoryBytes ?? DEFAULT_MEMORY_BYTES,
      signal: options.signal,
    });
    const fs = new Filesystem(tree, {
      chunk: async (index: number, chunk: Chunk, path: string) => {
        try {
          return await chunks.get(index, chunk, path);
        } catch (error) {
          emit({ type: "read-failed", path, error });
          throw error;
        }
      },
      firstRead: () => undefined,
    });
    const session = await FuseSession.mount(options.dir, {
      source: `ferry:${descriptor.digest}`,
      handler: fs.handle,
      onError: (error) => emit({ type: "internal-error", error }),
    });
    emit({ type: "mounted", dir: options.dir, layers: 1, inodes: tree.nodes.length - 1 });
    const prefetched =
      options.prefetch === false ? Promise.resolve() : prefetch({ layers: [layer] }, chunks, emit);
    return new LayerMount(layer, session, chunks, prefetched);
  }
}
