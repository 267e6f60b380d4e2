// eStargz layers as overlayfs lower dirs: ONE read-only FUSE filesystem whose top-level
// directories are layers, added and removed while it is mounted. One filesystem, not one per
// layer, because each FUSE connection keeps a libuv pool thread blocked in read(2): with a
// mount per layer, four layers would take every pool thread and stall all file I/O.
// Each layer's TOC is verified up front; contents are fetched by chunk on first read, verified
// and cached in the store like `ferry mount`'s, and its prioritized files are prefetched.
import { join } from "node:path";
import type { Descriptor } from "../../oci/index.ts";
import type { RegistryClient, Repository } from "../../registry/index.ts";
import type { Chunk } from "../toc.ts";
import { type BackgroundResult, fetchInBackground } from "./background.ts";
import { ChunkStore } from "./chunks.ts";
import { Filesystem } from "./filesystem.ts";
import { FuseSession } from "./fuse-session.ts";
import { type MountLayer, openMountLayer } from "./image.ts";
import { type MountEvent, type MountStats, prefetch } from "./mount.ts";
import { overlayLayerEntries } from "./overlay-layer.ts";
import { buildTree, type FsNode, type FsTree } from "./tree.ts";

export interface LazyLayersOptions {
  /** Where the filesystem is mounted; layer NAME is the directory DIR/NAME. */
  dir: string;
  /** The ferry store; verified chunks are cached under STORE/ferry/lazy-chunks. */
  storeDir: string;
  /** A chunk fetch that receives no bytes for this long fails, and its read gets EIO. */
  fetchTimeoutMs: number;
  /** Bytes of verified chunks each layer keeps in memory (default 8 MiB). */
  memoryBytes?: number;
  /**
   * Fetch the rest of each layer behind the reads, after its prefetch, at this many compressed
   * bytes per second at most; off (undefined) by default.
   */
  backgroundBytesPerSecond?: number | undefined;
  /** Events of one layer, by its name. */
  onEvent?: (name: string, event: LazyLayersEvent) => void;
}

export type LazyLayersEvent = MountEvent | ({ type: "background-done" } & BackgroundResult);

export interface LazyLayerSource {
  registry: RegistryClient;
  repository: Repository;
  /** The layer's descriptor from a verified manifest: its TOC digest annotation is checked. */
  descriptor: Descriptor;
  /** Fetch the files before the prefetch landmark once added (default true). */
  prefetch?: boolean;
}

interface Added {
  readonly layer: MountLayer;
  readonly chunks: ChunkStore;
  readonly root: FsNode;
  readonly inodes: readonly number[];
  readonly prefetched: Promise<void>;
  /** Stops the background fetch when the layer is removed. */
  readonly stop: AbortController;
}

const DEFAULT_MEMORY_BYTES = 8 * 1024 * 1024;

export class LazyLayers {
  readonly #options: LazyLayersOptions;
  readonly #tree: FsTree & { nodes: FsNode[] };
  readonly #session: FuseSession;
  /** By layer number (what the tree's file contents name). */
  readonly #byNumber = new Map<number, Added>();
  readonly #byName = new Map<string, number>();
  #next = 0;
  /** Resolves when the filesystem is gone (unmounted by anyone). */
  readonly closed: Promise<void>;

  private constructor(
    options: LazyLayersOptions,
    tree: FsTree & { nodes: FsNode[] },
    session: FuseSession,
  ) {
    this.#options = options;
    this.#tree = tree;
    this.#session = session;
    this.closed = session.closed.finally(() =>
      Promise.all([...this.#byNumber.values()].map((a) => a.chunks.flushed())),
    );
  }

  /** Mounts the filesystem, with no layers yet, at `options.dir`. */
  static async mount(options: LazyLayersOptions): Promise<LazyLayers> {
    const tree = buildTree([]) as FsTree & { nodes: FsNode[] };
    let self: LazyLayers | undefined;
    const fs = new Filesystem(tree, {
      chunk: (number: number, chunk: Chunk, path: string) =>
        (self as LazyLayers).#chunk(number, chunk, path),
      firstRead: () => undefined,
    });
    const session = await FuseSession.mount(options.dir, {
      source: "ferry:lazy-layers",
      handler: fs.handle,
      onError: (error) => options.onEvent?.("", { type: "internal-error", error }),
    });
    self = new LazyLayers(options, tree, session);
    return self;
  }

  get dir(): string {
    return this.#session.dir;
  }

  /** The directory of layer `name`. */
  path(name: string): string {
    return join(this.#session.dir, name);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Reads and verifies the layer's TOC, then shows it as DIR/NAME; throws when it is not eStargz. */
  async add(name: string, source: LazyLayerSource): Promise<string> {
    if (this.#byName.has(name)) return this.path(name);
    const { registry, repository, descriptor } = source;
    const layer = await openMountLayer(registry, repository, descriptor, undefined);
    const number = this.#next++;
    const own = buildTree([overlayLayerEntries(layer.entries)]);
    const inodes: number[] = [];
    for (const node of own.nodes.slice(1)) {
      node.ino = this.#tree.nodes.length;
      this.#tree.nodes.push(node);
      inodes.push(node.ino);
      if (node.content !== undefined) node.content = { ...node.content, layer: number };
    }
    const root = this.#tree.root;
    own.root.parent = root;
    const chunks = new ChunkStore({
      registry,
      repository,
      layers: [{ digest: descriptor.digest, size: descriptor.size }],
      cacheDir: join(this.#options.storeDir, "ferry", "lazy-chunks"),
      fetchTimeoutMs: this.#options.fetchTimeoutMs,
      memoryBytes: this.#options.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    });
    const prefetched =
      source.prefetch === false
        ? Promise.resolve()
        : prefetch({ layers: [layer] }, chunks, (e) => this.#emit(number, e));
    const stop = new AbortController();
    this.#byNumber.set(number, { layer, chunks, root: own.root, inodes, prefetched, stop });
    const rate = this.#options.backgroundBytesPerSecond;
    if (rate !== undefined)
      void prefetched
        .then(() => fetchInBackground(layer, chunks, rate, stop.signal))
        .then((result) => {
          if (!stop.signal.aborted) this.#emit(number, { type: "background-done", ...result });
        });
    this.#byName.set(name, number);
    root.children?.set(name, own.root);
    root.nlink++;
    this.#emit(number, { type: "mounted", dir: this.path(name), layers: 1, inodes: inodes.length });
    return this.path(name);
  }

  /** Takes layer `name` out of the filesystem, once the chunks it fetched are on disk. */
  async remove(name: string): Promise<void> {
    const number = this.#byName.get(name);
    if (number === undefined) return;
    const added = this.#byNumber.get(number) as Added;
    added.stop.abort();
    this.#byName.delete(name);
    this.#byNumber.delete(number);
    const root = this.#tree.root;
    root.children?.delete(name);
    root.nlink--;
    // The inodes go too: a kernel that still holds one gets ENOENT, never another layer's file.
    for (const ino of added.inodes) delete this.#tree.nodes[ino];
    await this.#session.invalidateEntry(root.ino, name);
    await added.chunks.flushed();
  }

  /** Resolves once layer `name`'s prefetch is over. */
  prefetched(name: string): Promise<void> {
    const number = this.#byName.get(name);
    return number === undefined
      ? Promise.resolve()
      : (this.#byNumber.get(number)?.prefetched ?? Promise.resolve());
  }

  stats(name: string): MountStats | undefined {
    const number = this.#byName.get(name);
    const added = number === undefined ? undefined : this.#byNumber.get(number);
    if (added === undefined) return undefined;
    return {
      fetchedBytes: added.chunks.fetchedBytes,
      fetchedChunks: added.chunks.fetchedChunks,
      cachedChunks: added.chunks.diskHits,
      tocBytes: added.layer.tocBytes,
      layerBytes: added.layer.descriptor.size,
    };
  }

  /** Unmounts (detaching a busy mount) and waits until the fetched chunks are on disk. */
  async unmount(): Promise<void> {
    await this.#session.unmount();
    await this.closed;
  }

  #chunk(number: number, chunk: Chunk, path: string): Promise<Buffer> {
    const added = this.#byNumber.get(number);
    if (added === undefined) return Promise.reject(new Error(`layer #${number} was removed`));
    return added.chunks.get(0, chunk, path).catch((error: unknown) => {
      this.#emit(number, { type: "read-failed", path, error });
      throw error;
    });
  }

  #emit(number: number, event: LazyLayersEvent): void {
    const name = [...this.#byName].find(([, n]) => n === number)?.[0] ?? "";
    this.#options.onEvent?.(name, event);
  }
}
