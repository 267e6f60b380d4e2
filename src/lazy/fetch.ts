import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { FerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import { type RegistryClient, RegistrySource, type Repository } from "../registry/index.ts";
import type { Chunk } from "./toc.ts";

/**
 * Byte-range reads of one layer blob, counting what crosses the network.
 * Ranges go to the registry itself: mirrors are not asked for partial blobs.
 */
export class RangeReader {
  readonly #source: RegistrySource;
  readonly #blob: Descriptor;
  readonly #signal: AbortSignal | undefined;
  readonly #onBytes: ((n: number) => void) | undefined;
  readonly digest: string;
  readonly size: number;
  fetched = 0;

  constructor(options: {
    registry: RegistryClient;
    repository: Repository;
    digest: string;
    size: number;
    signal?: AbortSignal | undefined;
    /** Called as body bytes arrive (e.g. to keep an idle timeout from firing). */
    onBytes?: ((n: number) => void) | undefined;
  }) {
    this.#onBytes = options.onBytes;
    this.#source = new RegistrySource(options.registry, options.repository);
    this.#signal = options.signal;
    this.digest = options.digest;
    this.size = options.size;
    this.#blob = { mediaType: "application/octet-stream", digest: this.digest, size: this.size };
  }

  /** Bytes [start, end) of the blob, as a stream the caller consumes. */
  open(start: number, end: number): Promise<Readable> {
    return this.#source.open(this.#blob, { start, end }, this.#signal);
  }

  /** Bytes [start, end) of the blob, in memory. */
  async read(start: number, end: number): Promise<Buffer> {
    const body = await this.open(start, end);
    const parts: Buffer[] = [];
    let got = 0;
    for await (const part of body) {
      const b = part as Buffer;
      got += b.length;
      this.fetched += b.length;
      this.#onBytes?.(b.length);
      if (got > end - start) {
        body.destroy();
        throw new FerryError(
          "FERRY_REGISTRY_ERROR",
          `registry sent more than the ${end - start} bytes asked of ${this.digest}`,
        );
      }
      parts.push(b);
    }
    if (got !== end - start)
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry sent ${got} of the ${end - start} bytes asked of ${this.digest}`,
      );
    return Buffer.concat(parts);
  }

  /**
   * One chunk of a file: fetches its gzip member (stopping as soon as enough is
   * decompressed), and returns the uncompressed piece once its sha256 matches the TOC.
   */
  async chunk(chunk: Chunk, path: string): Promise<Buffer> {
    const want = chunk.innerOffset + chunk.size;
    const body = await this.open(chunk.offset, chunk.end);
    const gunzip = createGunzip();
    const out: Buffer[] = [];
    let have = 0;
    const done = new Promise<void>((resolve, reject) => {
      gunzip.on("data", (b: Buffer) => {
        out.push(b);
        have += b.length;
        if (have >= want) {
          body.destroy();
          gunzip.destroy();
          resolve();
        }
      });
      gunzip.on("error", (cause) =>
        reject(
          new FerryError(
            "FERRY_DIGEST_MISMATCH",
            `chunk of ${path} at offset ${chunk.offset} of layer ${this.digest} is not valid gzip`,
            {
              hint: "the layer is corrupt, or something between you and the registry altered it",
              fields: { layer: this.digest, path, offset: chunk.offset },
              cause,
            },
          ),
        ),
      );
      gunzip.on("end", () => resolve());
      body.on("error", reject);
    });
    body.on("data", (b: Buffer) => {
      this.fetched += b.length;
      this.#onBytes?.(b.length);
    });
    body.pipe(gunzip);
    await done;
    const all = Buffer.concat(out);
    if (all.length < want)
      throw new FerryError(
        "FERRY_ARCHIVE_INVALID",
        `chunk of ${path} at offset ${chunk.offset} of layer ${this.digest} holds ${all.length} bytes, the TOC says ${want}`,
        {
          fields: { layer: this.digest, path },
        },
      );
    const piece = all.subarray(chunk.innerOffset, want);
    const actual = `sha256:${createHash("sha256").update(piece).digest("hex")}`;
    if (actual !== chunk.digest) {
      throw new FerryError(
        "FERRY_DIGEST_MISMATCH",
        `chunk of ${path} at byte ${chunk.chunkOffset} (layer ${this.digest}) does not match its chunkDigest ${chunk.digest} (got ${actual})`,
        {
          hint: "the layer is corrupt, or something between you and the registry altered it; nothing of this chunk was used",
          fields: { layer: this.digest, path, expected: chunk.digest, actual },
        },
      );
    }
    return piece;
  }
}
