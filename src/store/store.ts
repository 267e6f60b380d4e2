import { readFile, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { digestOf, parseDigest } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import { Annotation, type Descriptor, parseDescriptor } from "../oci/index.ts";
import { writeFileAtomic } from "./atomic.ts";
import {
  annotationsOf,
  readIndexEntries,
  refNameOf,
  withIndexLock,
  writeIndexEntries,
} from "./index-file.ts";
import { type IngestOptions, IngestWriter } from "./ingest.ts";
import { UnnamedIngest } from "./ingest-unnamed.ts";
import { Lease } from "./lease.ts";
import { initLayout } from "./layout.ts";
import { acquireLock, type Lock } from "./lock.ts";
import { DiskPressure } from "./pressure.ts";
import { findStaleTemp } from "./sweep.ts";
import { lastUse, removeUse, touchUse } from "./use.ts";

/** ferry's own annotations on index.json entries; other tools ignore them. */
export const FerryAnnotation = {
  pulledAt: "dev.ferry.pulled-at",
  /** The digest the registry resolved the reference to (an index for multi-platform images). */
  sourceDigest: "dev.ferry.source-digest",
  /** "true" on images that pruning and eviction never remove. */
  pinned: "dev.ferry.pinned",
} as const;

/** An image recorded in the store under a name. */
export interface ImageRecord {
  /** Fully qualified reference, as in the ref.name annotation. */
  readonly reference: string;
  /** The image manifest stored for this host's platform. */
  readonly descriptor: Descriptor;
  readonly sourceDigest: string;
  readonly pulledAt: string | undefined;
  /** Pinned images are never pruned or evicted. */
  readonly pinned: boolean;
}

/** The default store location: $FERRY_STORE, else $XDG_DATA_HOME/ferry/store, else ~/.local/share/ferry/store (root: /var/lib/ferry/store). */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_STORE) return env.FERRY_STORE;
  if (process.getuid?.() === 0) return "/var/lib/ferry/store";
  const data = env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(data, "ferry", "store");
}

/**
 * The on-disk OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/…`,
 * plus ferry's working files under `ferry/`: ingest partials and locks, leases,
 * last-use records (`use/`), quarantined blobs.
 * Every write is atomic; index.json changes happen under a lock.
 */
export class Store {
  readonly root: string;
  /** Whether writes find the disk full: servers report it and keep serving what is stored. */
  readonly pressure: DiskPressure;

  private constructor(root: string) {
    this.root = root;
    this.pressure = new DiskPressure(root);
  }

  static async open(root: string): Promise<Store> {
    await initLayout(root);
    return new Store(root);
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

  /**
   * Starts writing `desc` into the store: its ingest lock is taken and the blob checked for
   * under it; undefined when the store has it already. The writer verifies what it commits.
   */
  async ingest(desc: Descriptor, options: IngestOptions = {}): Promise<IngestWriter | undefined> {
    if (await this.hasBlob(desc.digest, desc.size)) return undefined;
    const lock = await this.lockIngest(desc.digest, options.signal);
    let present = true;
    try {
      present = await this.hasBlob(desc.digest, desc.size);
    } finally {
      if (present) await lock.release();
    }
    if (present) return undefined;
    const place = {
      partial: this.ingestPath(desc.digest),
      blob: this.blobPath(desc.digest),
      lock,
      pressure: this.pressure,
    };
    return new IngestWriter(desc, place, options);
  }

  /**
   * Puts a finished file (a converted or built layer, on this filesystem or another) into the
   * store as `desc`: it becomes the ingest partial, is hashed once more and committed only if
   * it is `desc`. False (the file left where it is) when the store had the blob already.
   */
  async ingestFile(desc: Descriptor, path: string, signal?: AbortSignal): Promise<boolean> {
    const writer = await this.ingest(desc, { signal });
    if (writer === undefined) return false;
    try {
      await writer.adopt(path);
      await writer.commit();
      return true;
    } finally {
      await writer.close();
    }
  }

  /** Starts writing a blob whose digest is learnt by writing it (an archive entry not named by digest). */
  ingestUnnamed(): Promise<UnnamedIngest> {
    return UnnamedIngest.open({
      dir: this.#ferryDir("ingest"),
      pressure: this.pressure,
      blobPath: (digest) => this.blobPath(digest),
      hasBlob: (digest, size) => this.hasBlob(digest, size),
      lockIngest: (digest) => this.lockIngest(digest),
    });
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
    await this.pressure.track(writeFileAtomic(this.blobPath(digest), bytes, 0o444));
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

  async images(): Promise<ImageRecord[]> {
    const out: ImageRecord[] = [];
    for (const entry of await readIndexEntries(this.root)) {
      const record = imageRecordOf(entry);
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  async findImage(reference: string): Promise<ImageRecord | undefined> {
    return (await this.images()).find((r) => r.reference === reference);
  }

  /**
   * Records `reference` → manifest in index.json, replacing what the name pointed at
   * before (keeping its pin), and marks it used.
   */
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
    const record = withIndexLock(this.root, async () => {
      const all = await readIndexEntries(this.root);
      const before = all.find((m) => refNameOf(m) === reference);
      if (annotationsOf(before)?.[FerryAnnotation.pinned] === "true") {
        (entry.annotations as Record<string, string>)[FerryAnnotation.pinned] = "true";
      }
      const manifests = all.filter((m) => refNameOf(m) !== reference);
      manifests.push(entry);
      await writeIndexEntries(this.root, manifests);
      await touchUse(this.root, reference, pulledAt);
    });
    await this.pressure.track(record);
  }

  /** Pins or unpins a stored image; returns false when there is no such image. */
  async setPinned(reference: string, pinned: boolean): Promise<boolean> {
    return withIndexLock(this.root, async () => {
      const manifests = await readIndexEntries(this.root);
      const entry = manifests.find((m) => refNameOf(m) === reference);
      const annotations = annotationsOf(entry);
      if (annotations === undefined) return false;
      const was = annotations[FerryAnnotation.pinned] === "true";
      if (was === pinned) return true;
      if (pinned) annotations[FerryAnnotation.pinned] = "true";
      else delete annotations[FerryAnnotation.pinned];
      await writeIndexEntries(this.root, manifests);
      return true;
    });
  }

  /** Marks an image used now (a pull of a present image, a mirror or agent read); cheap: one utimes. */
  async touch(reference: string, at = new Date()): Promise<void> {
    try {
      await touchUse(this.root, reference, at);
    } catch (err) {
      // Only a failure counts: a utimes succeeds on a full disk, so it says nothing of the space.
      this.pressure.observe(err);
      throw err;
    }
  }

  /** When the image was last used; its pull time when nothing used it since. */
  lastUsedAt(record: ImageRecord): Promise<Date | undefined> {
    return lastUse(this.root, record.reference, record.pulledAt);
  }

  /**
   * Protects `digests` (and the name `reference`) from garbage collection until
   * released. Take it before checking for any of the blobs; release it after recordImage.
   */
  lease(reference: string | undefined, digests: Iterable<string>): Promise<Lease> {
    return this.pressure.track(Lease.take(this.root, reference, digests));
  }

  /** Removes a name; returns false when it was not there. Blobs stay until garbage collection. */
  async removeImage(reference: string): Promise<boolean> {
    let removed = false;
    await withIndexLock(this.root, async () => {
      const manifests = await readIndexEntries(this.root);
      const kept = manifests.filter((m) => refNameOf(m) !== reference);
      removed = kept.length !== manifests.length;
      if (removed) {
        await writeIndexEntries(this.root, kept);
        await removeUse(this.root, reference);
      }
    });
    return removed;
  }

  /** Removes temp files left by processes that no longer run (the ingest partials are kept for resume). */
  async cleanStaleTemp(): Promise<number> {
    const stale = await findStaleTemp(this.root);
    await Promise.all(stale.map((f) => rm(f.path, { force: true })));
    return stale.length;
  }
}

/** The image an index.json entry names; undefined for entries without a name or that ferry cannot read (left alone). */
export function imageRecordOf(entry: unknown): ImageRecord | undefined {
  let d: Descriptor;
  try {
    d = parseDescriptor(entry);
  } catch {
    return undefined;
  }
  const reference = d.annotations?.[Annotation.refName];
  if (reference === undefined) return undefined;
  return {
    reference,
    descriptor: d,
    sourceDigest: d.annotations?.[FerryAnnotation.sourceDigest] ?? d.digest,
    pulledAt: d.annotations?.[FerryAnnotation.pulledAt],
    pinned: d.annotations?.[FerryAnnotation.pinned] === "true",
  };
}
