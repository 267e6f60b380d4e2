import type { Readable } from "node:stream";
import { FerryError } from "../observe/index.ts";
import {
  type BlobSource,
  type ByteRange,
  checkRange,
  type Descriptor,
  rangeAnswer,
  verifiedBlob,
} from "../oci/index.ts";
import {
  blobPath,
  errorFromResponse,
  type HttpResponse,
  header,
  type Repository,
  send,
} from "../registry/index.ts";
import { PEER_AUTH_HEADER, signRequest } from "./signing.ts";

/** "Answer from your store (or a download under way) only; do not go to the upstream for me." */
export const STORED_ONLY_HEADER = "x-ferry-stored-only";

/** The path of a blob on a peer's listener (`?ns=` names its registry) and the signed headers to send. */
export function peerRequest(
  key: Buffer,
  method: "GET" | "HEAD",
  repo: Repository,
  digest: string,
  protocol: Record<string, string>,
): { path: string; headers: Record<string, string> } {
  const path = `${blobPath(repo.path, digest)}?ns=${encodeURIComponent(repo.domain)}`;
  // The signature covers the protocol headers too, so they cannot be changed or added in transit.
  const signature = signRequest(key, method, path, Date.now(), { ...protocol });
  return { path, headers: { ...protocol, [PEER_AUTH_HEADER]: signature } };
}

/**
 * One peer's stored blobs of one repository, as a blob source: signed requests to its
 * listener that ask for stored copies only (the peer never goes upstream for them).
 */
export class PeerBlobs implements BlobSource {
  readonly #peer: string;
  readonly #key: Buffer;
  readonly #repo: Repository;

  constructor(options: { peer: string; key: Buffer; repository: Repository }) {
    this.#peer = options.peer;
    this.#key = options.key;
    this.#repo = options.repository;
  }

  async open(desc: Descriptor, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    if (range !== undefined) checkRange(range, desc);
    const res = await this.#send(
      "GET",
      desc.digest,
      signal,
      range === undefined ? {} : { range: `bytes=${range.start}-${range.end - 1}` },
    );
    if (range === undefined && res.status === 200) return verifiedBlob(res.body, desc);
    if (range !== undefined && res.status === 206)
      return rangeAnswer(res.body, header(res, "content-range"), range, desc, `peer ${this.#peer}`);
    throw await this.#failure(res, desc.digest);
  }

  async stat(digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.#send("HEAD", digest, signal);
    res.body.resume();
    if (res.status === 404) return undefined;
    const length = Number(header(res, "content-length"));
    if (res.status === 200 && Number.isSafeInteger(length)) return length;
    throw await this.#failure(res, digest);
  }

  #send(
    method: "GET" | "HEAD",
    digest: string,
    signal: AbortSignal | undefined,
    extra: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const { path, headers } = peerRequest(this.#key, method, this.#repo, digest, {
      [STORED_ONLY_HEADER]: "1",
    });
    return send({
      method,
      url: `http://${this.#peer}${path}`,
      headers: { ...headers, ...extra },
      signal,
    });
  }

  async #failure(res: HttpResponse, digest: string): Promise<FerryError> {
    if (res.status === 404) {
      res.body.resume();
      return new FerryError("FERRY_BLOB_UNKNOWN", `peer ${this.#peer} does not hold ${digest}`, {
        fields: { peer: this.#peer, digest },
      });
    }
    return errorFromResponse(res, {
      host: this.#peer,
      repository: this.#repo.path,
      what: "blob",
      digest,
    });
  }
}
