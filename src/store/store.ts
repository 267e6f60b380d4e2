import { createReadStream, type ReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { digestOf, parseDigest } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import { Annotation, type Descriptor, MediaType, parseDescriptor } from "../oci/index.ts";
import { diskError, fsyncDir, isProcessAlive, TEMP_NAME, writeFileAtomic } from "./atomic.ts";
import { acquireLock, type Lock } from "./lock.ts";

/** ferry's own annotations on index.json entries; other tools ignore them. */
export const FerryAnnotation = {
  pulledAt: "dev.ferry.pulled-at",
  /** The digest the registry resolved the reference to (an index for multi-platform images). */
  sourceDigest: "dev.ferry.source-digest",
} as const;

export const OCI_LAYOUT_VERSION = "1.0.0";

/** An image recorded in the store under a name. */
export interface ImageRecord {
  /** Fully qualified reference, as in the ref.name annotation. */
  readonly reference: string;
  /** The image manifest stored for this host's platform. */
  readonly descriptor: Descriptor;
  readonly sourceDigest: string;
  readonly pulledAt: string | undefined;
}

const IndexSchemaLoose = {
  parse: (v: unknown) => v as { schemaVersion: number; mediaType?: string; manifests: unknown[] },
};

/** The default store location: $FERRY_STORE, else $XDG_DATA_HOME/ferry/store, else ~/.local/share/ferry/store (root: /var/lib/ferry/store). */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_STORE) return env.FERRY_STORE;
  if (process.getuid?.() === 0) return "/var/lib/ferry/store";
  const data = env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(data, "ferry", "store");
}

/**
 * The on-disk OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/…`,
 * plus ferry's working files under `ferry/` (ingest partials and locks).
 * Every write is atomic; index.json changes happen under a lock.
 */
export class Store {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  static async open(root: string): Promise<Store> {
    const store = new Store(root);
    await store.#init();
    return store;
  }

  async #init(): Promise<void> {
    try {
      await mkdir(join(this.root, "blobs", "sha256"), { recursive: true });
      await mkdir(this.#ferryDir("ingest"), { recursive: true });
    } catch (err) {
      throw diskError(err, this.root);
    }
    const layoutPath = join(this.root, "oci-layout");
    const layout = await readFile(layoutPath, "utf8").catch(() => undefined);
    if (layout === undefined) {
      await writeFileAtomic(layoutPath, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
    } else {
      let version: unknown;
      try {
        version = (JSON.parse(layout) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      } catch {
        version = undefined;
      }
      if (version !== OCI_LAYOUT_VERSION) {
        throw new FerryError(
          "FERRY_STORE_CORRUPT",
          `${layoutPath} is not an OCI image layout version ${OCI_LAYOUT_VERSION}`,
          {
            hint: "point --store at an empty directory or an existing ferry store",
          },
        );
      }
    }
    const indexPath = join(this.root, "index.json");
    const exists = await stat(indexPath).then(
      () => true,
      () => false,
    );
    if (!exists) {
      await this.#withIndexLock(async () => {
        if (
          !(await stat(indexPath).then(
            () => true,
            () => false,
          ))
        )
          await this.#writeIndex([]);
      });
    }
  }

  #ferryDir(...parts: string[]): string {
    return join(this.root, "ferry", ...parts);
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, "blobs", algorithm, hex);
  }

  /** Where a blob being downloaded lives until verified; named by digest so a later pull resumes it. */
  ingestPath(digest: string): string {
    return this.#ferryDir("ingest", `${parseDigest(digest).hex}.partial`);
  }

  async hasBlob(digest: string, size?: number): Promise<boolean> {
    try {
      const s = await stat(this.blobPath(digest));
      return s.isFile() && (size === undefined || s.size === size);
    } catch {
      return false;
    }
  }

  /** Serialises the download of one blob across processes; the holder re-checks hasBlob first. */
  lockIngest(digest: string, signal?: AbortSignal): Promise<Lock> {
    return acquireLock(this.#ferryDir("ingest", `${parseDigest(digest).hex}.lock`), {
      timeoutMs: 6 * 60 * 60_000,
      signal,
    });
  }

  /** Moves a verified partial into the blob store (the caller verified it while writing and holds the ingest lock). */
  async commitIngest(digest: string): Promise<void> {
    const target = this.blobPath(digest);
    try {
      await rename(this.ingestPath(digest), target);
      await fsyncDir(join(this.root, "blobs", "sha256"));
    } catch (err) {
      throw diskError(err, target);
    }
  }

  /** Stores small content (manifests, configs) after checking its digest. */
  async writeBlob(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = digestOf(bytes);
    if (actual !== digest) {
      throw new FerryError(
        "FERRY_DIGEST_MISMATCH",
        `refusing to store content as ${digest}: it hashes to ${actual}`,
        {
          fields: { expected: digest, actual },
        },
      );
    }
    if (await this.hasBlob(digest, bytes.byteLength)) return;
    await writeFileAtomic(this.blobPath(digest), bytes, 0o444);
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") {
        throw new FerryError("FERRY_STORE_CORRUPT", `blob ${digest} is missing from the store`, {
          hint: "pull the image again to restore it",
          fields: { digest },
        });
      }
      throw err;
    }
  }

  openBlob(digest: string, range?: { start: number; end?: number }): ReadStream {
    return createReadStream(
      this.blobPath(digest),
      range === undefined ? {} : { start: range.start, end: range.end },
    );
  }

  async images(): Promise<ImageRecord[]> {
    const manifests = await this.#readIndex();
    const out: ImageRecord[] = [];
    for (const entry of manifests) {
      let d: Descriptor;
      try {
        d = parseDescriptor(entry);
      } catch {
        continue; // an entry another tool wrote that ferry cannot read: leave it alone
      }
      const reference = d.annotations?.[Annotation.refName];
      if (reference === undefined) continue;
      out.push({
        reference,
        descriptor: d,
        sourceDigest: d.annotations?.[FerryAnnotation.sourceDigest] ?? d.digest,
        pulledAt: d.annotations?.[FerryAnnotation.pulledAt],
      });
    }
    return out;
  }

  async findImage(reference: string): Promise<ImageRecord | undefined> {
    return (await this.images()).find((r) => r.reference === reference);
  }

  /** Records `reference` → manifest in index.json, replacing what the name pointed at before. */
  async recordImage(
    reference: string,
    descriptor: Descriptor,
    sourceDigest: string,
    pulledAt = new Date(),
  ): Promise<void> {
    const entry: Descriptor = {
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      ...(descriptor.platform === undefined ? {} : { platform: descriptor.platform }),
      annotations: {
        [Annotation.refName]: reference,
        [FerryAnnotation.sourceDigest]: sourceDigest,
        [FerryAnnotation.pulledAt]: pulledAt.toISOString(),
      },
    };
    await this.#withIndexLock(async () => {
      const manifests = (await this.#readIndex()).filter((m) => refNameOf(m) !== reference);
      manifests.push(entry);
      await this.#writeIndex(manifests);
    });
  }

  /** Removes a name; returns false when it was not there. Blobs stay until garbage collection. */
  async removeImage(reference: string): Promise<boolean> {
    let removed = false;
    await this.#withIndexLock(async () => {
      const manifests = await this.#readIndex();
      const kept = manifests.filter((m) => refNameOf(m) !== reference);
      removed = kept.length !== manifests.length;
      if (removed) await this.#writeIndex(kept);
    });
    return removed;
  }

  /** Removes temp files left by processes that no longer run (the ingest partials are kept for resume). */
  async cleanStaleTemp(): Promise<number> {
    let removed = 0;
    for (const dir of [this.root, join(this.root, "blobs", "sha256"), this.#ferryDir()]) {
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        const m = TEMP_NAME.exec(name);
        if (m !== null && !isProcessAlive(Number(m[1]))) {
          await rm(join(dir, name), { force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  async #withIndexLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = await acquireLock(this.#ferryDir("index.lock"));
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  async #readIndex(): Promise<unknown[]> {
    const path = join(this.root, "index.json");
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return [];
      throw err;
    }
    try {
      const index = IndexSchemaLoose.parse(JSON.parse(text));
      return Array.isArray(index.manifests) ? index.manifests : [];
    } catch (cause) {
      throw new FerryError("FERRY_STORE_CORRUPT", `${path} is not valid JSON`, {
        hint: "restore it from a backup or move the store aside and pull again",
        cause,
      });
    }
  }

  async #writeIndex(manifests: unknown[]): Promise<void> {
    const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
    await writeFileAtomic(join(this.root, "index.json"), `${JSON.stringify(index, null, 2)}\n`);
  }
}

function refNameOf(entry: unknown): string | undefined {
  const annotations = (entry as { annotations?: Record<string, unknown> } | null)?.annotations;
  const name = annotations?.[Annotation.refName];
  return typeof name === "string" ? name : undefined;
}
