import type { Readable } from "node:stream";
import { FerryError } from "../observe/index.ts";
import {
  type ByteRange,
  checkRange,
  type Descriptor,
  type ImageSource,
  rangeAnswer,
  type SourceManifest,
  verifiedBlob,
} from "../oci/index.ts";
import { pullScope, type RegistryClient, type Repository } from "./client.ts";
import type { KnownManifest } from "./manifest-answer.ts";
import { errorFromResponse } from "./errors.ts";
import { blobPath } from "./paths.ts";
import { header, type HttpResponse } from "./transport.ts";

/**
 * A registry repository as an image source, over the client's public methods: manifests
 * and whole blobs from the endpoint that answers (configured mirrors first); ranges and
 * stat from the registry itself (mirrors are not asked for partial blobs).
 */
export class RegistrySource implements ImageSource {
  readonly repo: Repository;
  readonly #registry: RegistryClient;
  readonly #known: Promise<KnownManifest | undefined> | undefined;

  /** `known`: a manifest already held and verified; an answer equal to it needs no hashing. */
  constructor(
    registry: RegistryClient,
    repo: Repository,
    known?: Promise<KnownManifest | undefined>,
  ) {
    this.#registry = registry;
    this.repo = { domain: repo.domain, path: repo.path };
    this.#known = known;
  }

  manifest(reference: string, signal?: AbortSignal): Promise<SourceManifest> {
    return this.#registry.fetchManifest(this.repo, reference, signal, this.#known);
  }

  async open(desc: Descriptor, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    if (range === undefined) {
      const res = await this.#registry.openBlob(this.repo, desc.digest, signal ? { signal } : {});
      return verifiedBlob(res.body, desc);
    }
    checkRange(range, desc);
    const res = await this.#get(
      desc.digest,
      "GET",
      signal,
      `bytes=${range.start}-${range.end - 1}`,
    );
    if (res.status === 206)
      return rangeAnswer(
        res.body,
        header(res, "content-range"),
        range,
        desc,
        `registry ${this.repo.domain}`,
      );
    res.body.destroy();
    if (res.status === 200)
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${this.repo.domain} ignored a Range request for ${desc.digest}`,
        {
          hint: "lazy reads need a registry that serves byte ranges of blobs (HTTP 206)",
          fields: { digest: desc.digest },
        },
      );
    throw await this.#failure(res, desc.digest);
  }

  async stat(digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.#get(digest, "HEAD", signal);
    res.body.resume();
    if (res.status === 404) return undefined;
    const length = Number(header(res, "content-length"));
    if (res.status === 200 && Number.isSafeInteger(length)) return length;
    throw await this.#failure(res, digest);
  }

  #get(
    digest: string,
    method: "GET" | "HEAD",
    signal: AbortSignal | undefined,
    range?: string,
  ): Promise<HttpResponse> {
    return this.#registry.request(
      this.repo,
      { scope: pullScope(this.repo), signal, what: "blob" },
      (base, headers) => ({
        method,
        url: `${base}${blobPath(this.repo.path, digest)}`,
        headers: range === undefined ? headers : { ...headers, range },
      }),
    );
  }

  #failure(res: HttpResponse, digest: string): Promise<FerryError> {
    return errorFromResponse(res, {
      host: this.repo.domain,
      repository: this.repo.path,
      what: "blob",
      digest,
    });
  }
}
