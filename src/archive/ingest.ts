/**
 * Takes archive entries as they stream past: blobs go through the store's ingest path
 * (hashed while written, verified, then committed under their digest); small other files
 * (index.json, manifest.json, docker configs) are held in memory.
 */
import { createHash, type Hash } from "node:crypto";
import { digestOf, SHA256 } from "../digest/index.ts";
import type { Lease, Store, UnnamedIngest } from "../store/index.ts";
import { type Compression, MagicProbe } from "./compression.ts";
import { blobPathDigest, isMisnamedBlobPath } from "./entry-path.ts";
import { archiveInvalid } from "./errors.ts";
import type { TarFile } from "./tar-reader.ts";

/** One regular file of the archive, after its bytes were hashed. */
export interface TakenFile {
  readonly path: string;
  readonly digest: string;
  readonly size: number;
  /** Of the first bytes: tells compressed layer tars from plain ones. */
  readonly compression: Compression;
  /** Held in memory (small non-blob files); otherwise the blob is in the store. */
  readonly bytes: Buffer | undefined;
}

export interface IngestEvent {
  type: "blob";
  path: string;
  digest: string;
  size: number;
  status: "written" | "exists";
}

/** Files outside blobs/ up to this size are held in memory (configs, manifests, VERSION files). */
const HOLD_MAX_FILE = 1 << 20;
/** …until this many bytes are held; larger archives of tiny layers spill into the store. */
const HOLD_MAX_TOTAL = 64 << 20;

export class EntryIngest {
  readonly #store: Store;
  readonly #source: string;
  readonly #onEvent: (event: IngestEvent) => void;
  readonly #lease: Lease | undefined;
  #held = 0;
  /** Digests this load put into the store (not there before). */
  readonly written = new Set<string>();
  readonly skipped = new Set<string>();
  bytesWritten = 0;

  /** `lease`: digests are added to it before they are checked or committed, so prune spares them until recorded. */
  constructor(store: Store, source: string, onEvent: (event: IngestEvent) => void, lease?: Lease) {
    this.#store = store;
    this.#source = source;
    this.#onEvent = onEvent;
    this.#lease = lease;
  }

  async take(file: TarFile, expectedSize: number | undefined): Promise<TakenFile> {
    if (isMisnamedBlobPath(file.path)) {
      throw archiveInvalid(this.#source, "refused: blobs must be named blobs/sha256/<64 hex>", {
        entry: file.path,
      });
    }
    const named = blobPathDigest(file.path);
    if (named !== undefined && expectedSize !== undefined && file.size !== expectedSize) {
      throw this.#sizeProblem(file, expectedSize);
    }
    if (
      named === undefined &&
      file.size <= HOLD_MAX_FILE &&
      this.#held + file.size <= HOLD_MAX_TOTAL
    ) {
      return this.#hold(file);
    }
    if (named !== undefined && (await this.#store.hasBlob(named, file.size))) {
      return this.#verifyOnly(file, named);
    }
    return this.#stage(file, named);
  }

  #sizeProblem(file: TarFile, expected: number) {
    return archiveInvalid(
      this.#source,
      `it is ${file.size} bytes, but the image's descriptor says ${expected}`,
      { entry: file.path },
    );
  }

  async #hold(file: TarFile): Promise<TakenFile> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of file.body) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    this.#held += bytes.length;
    const probe = new MagicProbe();
    probe.see(bytes);
    return { ...this.#taken(file, digestOf(bytes), probe), bytes };
  }

  async #verifyOnly(file: TarFile, named: string): Promise<TakenFile> {
    const hash = createHash(SHA256);
    const probe = new MagicProbe();
    for await (const chunk of file.body) {
      hash.update(chunk);
      probe.see(chunk);
    }
    this.#checkName(file, named, digestFrom(hash));
    this.skipped.add(named);
    this.#onEvent({
      type: "blob",
      path: file.path,
      digest: named,
      size: file.size,
      status: "exists",
    });
    return this.#taken(file, named, probe);
  }

  /** Streams the entry into the store (hashed as written), then commits it under its digest. */
  async #stage(file: TarFile, named: string | undefined): Promise<TakenFile> {
    const writer = await this.#store.ingestUnnamed();
    const probe = new MagicProbe();
    try {
      for await (const chunk of file.body) {
        probe.see(chunk);
        await writer.write(chunk);
      }
      const digest = await writer.seal();
      if (named !== undefined) this.#checkName(file, named, digest);
      await this.#commit(writer, digest, file);
      return this.#taken(file, digest, probe);
    } finally {
      await writer.discard();
    }
  }

  async #commit(writer: UnnamedIngest, digest: string, file: TarFile): Promise<void> {
    await this.#lease?.add([digest]);
    if (!(await writer.commit(digest))) {
      this.skipped.add(digest);
      this.#onEvent({ type: "blob", path: file.path, digest, size: file.size, status: "exists" });
      return;
    }
    this.written.add(digest);
    this.bytesWritten += file.size;
    this.#onEvent({ type: "blob", path: file.path, digest, size: file.size, status: "written" });
  }

  #checkName(file: TarFile, named: string, actual: string): void {
    if (actual !== named) {
      throw archiveInvalid(
        this.#source,
        `its content does not match its digest: it hashes to ${actual}`,
        { entry: file.path },
      );
    }
  }

  #taken(file: TarFile, digest: string, probe: MagicProbe): TakenFile {
    return {
      path: file.path,
      digest,
      size: file.size,
      compression: probe.compression,
      bytes: undefined,
    };
  }

  /** Puts a held file into the store (a docker config, a small layer, a built manifest). */
  async writeHeld(digest: string, bytes: Buffer): Promise<void> {
    if (await this.#store.hasBlob(digest, bytes.length)) {
      this.skipped.add(digest);
      return;
    }
    await this.#store.writeBlob(digest, bytes);
    this.written.add(digest);
    this.bytesWritten += bytes.length;
  }
}

function digestFrom(hash: Hash): string {
  return `${SHA256}:${hash.digest("hex")}`;
}
