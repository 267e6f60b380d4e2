import { posix } from "node:path";
import { FerryError } from "../observe/index.ts";
import { type Descriptor, hostPlatform, type Platform, resolveImage } from "../oci/index.ts";
import { type RegistryClient, RegistrySource, type Repository } from "../registry/index.ts";
import { type Layer, openLayer, scanLayer, whiteoutTarget } from "./layer.ts";
import { IMPLICIT_DIR, LANDMARKS, type TocEntry } from "./toc.ts";

export interface LazyImageOptions {
  registry: RegistryClient;
  repository: Repository;
  /** Tag or digest. */
  reference: string;
  platform?: Platform | undefined;
  signal?: AbortSignal | undefined;
}

export interface LayerStats {
  readonly digest: string;
  readonly size: number;
  /** eStargz: read by ranges; otherwise read by streaming the whole layer. */
  readonly lazy: boolean;
  /** Compressed bytes received for this layer so far. */
  readonly fetched: number;
}

/** An entry of the merged image, with the layer it comes from. */
export interface ImageEntry extends TocEntry {
  readonly layer: number;
}

const MAX_LINK_HOPS = 40;

/** An image read file by file from its registry, fetching only the bytes asked for when its layers are eStargz. */
export class LazyImage {
  readonly #registry: RegistryClient;
  readonly #repo: Repository;
  readonly #layers: readonly Layer[];
  readonly #signal: AbortSignal | undefined;
  #merged: Map<string, ImageEntry> | undefined;

  private constructor(
    registry: RegistryClient,
    repo: Repository,
    layers: Layer[],
    signal: AbortSignal | undefined,
  ) {
    this.#registry = registry;
    this.#repo = repo;
    this.#layers = layers;
    this.#signal = signal;
  }

  /** Resolves the manifest (picking the platform from an index) and reads each layer's footer and TOC. */
  static async open(options: LazyImageOptions): Promise<LazyImage> {
    const { registry, repository: repo, signal } = options;
    const { manifest } = await resolveImage(
      new RegistrySource(registry, repo),
      options.reference,
      options.platform ?? hostPlatform(),
      { signal, name: repo.path },
    );
    const layers = await Promise.all(
      manifest.layers.map((d: Descriptor) => openLayer(registry, repo, d, signal)),
    );
    return new LazyImage(registry, repo, layers, signal);
  }

  get lazy(): boolean {
    return this.#layers.every((l) => l.toc !== undefined);
  }

  stats(): LayerStats[] {
    return this.#layers.map((l) => ({
      digest: l.descriptor.digest,
      size: l.descriptor.size,
      lazy: l.toc !== undefined,
      fetched: l.ranges.fetched,
    }));
  }

  /**
   * The entries of a directory (direct children, or everything below with
   * `recursive`), or the entry itself when `path` is not a directory.
   * Plain layers are streamed whole to learn their entries.
   */
  async list(path = "", options: { recursive?: boolean } = {}): Promise<ImageEntry[]> {
    const merged = await this.#mergedView();
    const at = normalize(path);
    const self = merged.get(at);
    if (at !== "" && self === undefined) throw notFound(at);
    if (self !== undefined && self.type !== "dir") return [self];
    const prefix = at === "" ? "" : `${at}/`;
    const found: ImageEntry[] = [];
    for (const [p, entry] of merged) {
      if (p === "" || !p.startsWith(prefix)) continue;
      if (!options.recursive && p.slice(prefix.length).includes("/")) continue;
      found.push(entry);
    }
    return found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** A regular file's bytes, chunk by chunk, each verified against the TOC before it is yielded. */
  async *read(path: string): AsyncGenerator<Buffer> {
    let want = normalize(path);
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const found = await this.#lookup(want);
      if (found === undefined) {
        // A directory no layer names (only its files do) is still a directory, not a missing file.
        if ((await this.#mergedView()).get(want)?.type === "dir") throw notAFile(want, "dir");
        throw notFound(want);
      }
      const { entry, layer, content } = found;
      if (entry.type === "symlink") {
        const target = entry.linkName ?? "";
        want = normalize(target.startsWith("/") ? target : posix.join(posix.dirname(want), target));
        continue;
      }
      if (entry.type === "hardlink") {
        want = entry.linkName ?? "";
        continue;
      }
      if (entry.type !== "reg") throw notAFile(want, entry.type);
      if (content !== undefined) {
        yield content;
        return;
      }
      const l = this.#layers[layer] as Layer;
      for (const chunk of entry.chunks) yield await l.ranges.chunk(chunk, want);
      return;
    }
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `${path}: more than ${MAX_LINK_HOPS} links to follow`,
    );
  }

  /** Top layer down: the first layer that has the path, unless a whiteout or opaque directory hides it first. */
  async #lookup(
    path: string,
  ): Promise<{ entry: TocEntry; layer: number; content?: Buffer | undefined } | undefined> {
    const ancestors = ancestorsOf(path);
    for (let i = this.#layers.length - 1; i >= 0; i--) {
      const layer = this.#layers[i] as Layer;
      let found: TocEntry | undefined;
      let content: Buffer | undefined;
      let hidden = false;
      const visit = (e: TocEntry, bytes?: Buffer): boolean => {
        if (e.path === path) {
          found = e;
          content = bytes;
          return true;
        }
        const w = whiteoutTarget(e.path);
        if (w === undefined) return false;
        if (
          w.hides === "opaque"
            ? ancestors.includes(w.dir)
            : w.hides === path || ancestors.includes(w.hides)
        )
          hidden = true;
        return w.hides === path; // the path itself cannot be in a layer that deletes it
      };
      if (layer.toc !== undefined) {
        for (const e of layer.toc) if (visit(e)) break;
      } else {
        await scanLayer(this.#registry, this.#repo, layer, visit, (p) => p === path, this.#signal);
      }
      if (found !== undefined) return { entry: found, layer: i, content };
      if (hidden) return undefined;
    }
    return undefined;
  }

  /** Every layer's entries, lowest first, with whiteouts applied. */
  async #mergedView(): Promise<Map<string, ImageEntry>> {
    if (this.#merged !== undefined) return this.#merged;
    const merged = new Map<string, ImageEntry>();
    for (let i = 0; i < this.#layers.length; i++) {
      const layer = this.#layers[i] as Layer;
      let entries: TocEntry[] = [];
      if (layer.toc !== undefined) entries = [...layer.toc];
      else
        await scanLayer(
          this.#registry,
          this.#repo,
          layer,
          (e) => {
            entries.push(e);
            return false;
          },
          undefined,
          this.#signal,
        );
      const removed = (p: string) => {
        merged.delete(p);
        for (const k of [...merged.keys()]) if (k.startsWith(`${p}/`)) merged.delete(k);
      };
      // Deletions act on the layers below, before this layer's own entries are added.
      for (const e of entries) {
        const w = whiteoutTarget(e.path);
        if (w === undefined) continue;
        if (w.hides === "opaque") {
          for (const k of [...merged.keys()])
            if (k.startsWith(w.dir === "" ? "" : `${w.dir}/`) && k !== w.dir && k !== "")
              merged.delete(k);
        } else removed(w.hides);
      }
      for (const e of entries) {
        if (whiteoutTarget(e.path) !== undefined || LANDMARKS.has(e.path)) continue;
        if (e.type !== "dir") removed(e.path);
        addParents(merged, e.path, i);
        merged.set(e.path, { ...e, layer: i });
      }
    }
    this.#merged = merged;
    return merged;
  }
}

/**
 * A layer may name `etc/h0.txt` without an `etc/` entry: the directory exists all the same, as
 * when the layer is unpacked (and in `ferry mount`'s tree), with the mode an unpacker gives it.
 */
function addParents(merged: Map<string, ImageEntry>, path: string, layer: number): void {
  for (const dir of ancestorsOf(path).slice(1)) {
    if (merged.get(dir)?.type === "dir") continue;
    merged.set(dir, { ...IMPLICIT_DIR, path: dir, layer });
  }
}

function normalize(path: string): string {
  const clean = posix.normalize(`/${path}`).replace(/\/+$/, "");
  return clean.replace(/^\/+/, "");
}

function ancestorsOf(path: string): string[] {
  const out: string[] = [""];
  const parts = path.split("/");
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

function notAFile(path: string, type: TocEntry["type"]): FerryError {
  return new FerryError(
    "FERRY_INVALID_ARGUMENT",
    `/${path} is a ${type === "dir" ? "directory" : `${type} device or fifo`}, not a regular file`,
    { hint: "use `ferry lazy ls` to list a directory" },
  );
}

function notFound(path: string): FerryError {
  return new FerryError(
    "FERRY_IMAGE_NOT_FOUND",
    `${path === "" ? "/" : `/${path}`}: no such file in the image`,
    {
      hint: "list the image's files with `ferry lazy ls REF [DIR]`",
      fields: { path },
    },
  );
}
