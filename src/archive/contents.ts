/**
 * What one pass over an archive found: its regular files by path (hashed, in the store or
 * held), legacy layer links, and the blobs by digest. Duplicate paths must agree.
 */
import { parseManifest } from "../oci/index.ts";
import type { Store } from "../store/index.ts";
import { blobPathDigest, blobPathOf } from "./entry-path.ts";
import { archiveInvalid } from "./errors.ts";
import type { EntryIngest, TakenFile } from "./ingest.ts";
import type { TarFile, TarVisitor } from "./tar-reader.ts";

/** Manifests larger than this are not manifests (registries cap them at 4 MiB too). */
export const MANIFEST_MAX_BYTES = 4 << 20;

export class ArchiveContents implements TarVisitor {
  readonly files = new Map<string, TakenFile>();
  readonly links = new Map<string, string>();
  readonly #ingest: EntryIngest;
  readonly #store: Store;
  readonly source: string;
  /** Sizes the descriptors seen so far promise, so an oversized entry is refused before it is written. */
  readonly #expected = new Map<string, number>();
  readonly #manifests = new Set<string>();

  constructor(store: Store, ingest: EntryIngest, source: string) {
    this.#store = store;
    this.#ingest = ingest;
    this.source = source;
  }

  async file(entry: TarFile): Promise<void> {
    const named = blobPathDigest(entry.path);
    const taken = await this.#ingest.take(
      entry,
      named === undefined ? undefined : this.#expected.get(named),
    );
    const before = this.files.get(entry.path);
    if (before !== undefined && before.digest !== taken.digest) {
      throw archiveInvalid(this.source, "refused: it appears twice, with different content", {
        entry: entry.path,
      });
    }
    if (this.links.has(entry.path)) throw this.#linkAndFile(entry.path);
    this.files.set(entry.path, taken);
    if (entry.path === "index.json" && taken.bytes !== undefined) this.#learn(taken.bytes);
    if (named !== undefined && this.#manifests.has(named) && taken.size <= MANIFEST_MAX_BYTES) {
      this.#learn(await this.#store.readBlob(named));
    }
  }

  link(path: string, target: string): void {
    const before = this.links.get(path);
    if (before !== undefined && before !== target) {
      throw archiveInvalid(this.source, "refused: it appears twice, linking to different files", {
        entry: path,
      });
    }
    if (this.files.has(path)) throw this.#linkAndFile(path);
    this.links.set(path, target);
  }

  #linkAndFile(path: string) {
    return archiveInvalid(this.source, "refused: it appears twice, as a file and as a link", {
      entry: path,
    });
  }

  /** The regular file at `path`, following one legacy layer link. */
  resolve(path: string): TakenFile | undefined {
    const direct = this.files.get(path);
    if (direct !== undefined) return direct;
    const target = this.links.get(path);
    return target === undefined ? undefined : this.files.get(target);
  }

  /** The blob `blobs/sha256/<hex>` of a digest, if the archive has it. */
  blob(digest: string): TakenFile | undefined {
    return this.files.get(blobPathOf(digest));
  }

  /** Best effort: the real checks happen when images are planned, after the whole pass. */
  #learn(bytes: Buffer): void {
    let parsed: ReturnType<typeof parseManifest>;
    try {
      parsed = parseManifest(bytes);
    } catch {
      return;
    }
    const expect = (digest: string, size: number, manifest: boolean) => {
      if (!this.#expected.has(digest)) this.#expected.set(digest, size);
      if (manifest) this.#manifests.add(digest);
    };
    if (parsed.kind === "index") {
      for (const d of parsed.index.manifests) expect(d.digest, d.size, true);
      return;
    }
    expect(parsed.manifest.config.digest, parsed.manifest.config.size, false);
    for (const d of parsed.manifest.layers) expect(d.digest, d.size, false);
  }
}
