import { createHash } from "node:crypto";
import { createGunzip } from "node:zlib";
import { FerryError } from "../observe/index.ts";
import {
  errorFromResponse,
  type HttpResponse,
  pullScope,
  type RegistryClient,
  type Repository,
} from "../registry/index.ts";
import type { Chunk } from "./toc.ts";

/**
 * Byte-range reads of one layer blob, counting what crosses the network.
 * Ranges go to the registry itself: mirrors are not asked for partial blobs.
 */
export class RangeReader {
  readonly #registry: RegistryClient;
  readonly #repo: Repository;
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
    this.#registry = options.registry;
    this.#repo = options.repository;
    this.#signal = options.signal;
    this.digest = options.digest;
    this.size = options.size;
  }

  /** GET bytes [start, end) of the blob; the response is a 206 whose body the caller consumes. */
  async open(start: number, end: number): Promise<HttpResponse> {
    const res = await this.#registry.request(
      this.#repo,
      { scope: pullScope(this.#repo), signal: this.#signal, what: "blob" },
      (base, headers) => ({
        method: "GET",
        url: `${base}/v2/${this.#repo.path}/blobs/${this.digest}`,
        headers: { ...headers, range: `bytes=${start}-${end - 1}` },
      }),
    );
    if (res.status === 206) return res;
    if (res.status === 200) {
      res.body.destroy();
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${this.#repo.domain} ignored a Range request for ${this.digest}`,
        {
          hint: "lazy reads need a registry that serves byte ranges of blobs (HTTP 206)",
          fields: { digest: this.digest },
        },
      );
    }
    throw await errorFromResponse(res, {
      host: this.#repo.domain,
      repository: this.#repo.path,
      what: "blob",
      digest: this.digest,
    });
  }

  /** Bytes [start, end) of the blob, in memory. */
  async read(start: number, end: number): Promise<Buffer> {
    const res = await this.open(start, end);
    const parts: Buffer[] = [];
    let got = 0;
    for await (const part of res.body) {
      const b = part as Buffer;
      got += b.length;
      this.fetched += b.length;
      this.#onBytes?.(b.length);
      if (got > end - start) {
        res.body.destroy();
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
    const res = await this.open(chunk.offset, chunk.end);
    const gunzip = createGunzip();
    const out: Buffer[] = [];
    let have = 0;
    const done = new Promise<void>((resolve, reject) => {
      gunzip.on("data", (b: Buffer) => {
        out.push(b);
        have += b.length;
        if (have >= want) {
          res.body.destroy();
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
      res.body.on("error", reject);
    });
    res.body.on("data", (b: Buffer) => {
      this.fetched += b.length;
      this.#onBytes?.(b.length);
    });
    res.body.pipe(gunzip);
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
