import type { Descriptor } from "../oci/index.ts";
import type { Limiter } from "../pull/index.ts";
import { blobPath, pullScope, type RegistryClient, type Repository } from "../registry/index.ts";
import { DistributionError } from "./errors.ts";

/**
 * Blob HEADs upstream (is this digest in that repository, and how big): clients asking the
 * same question at once share one request, under the mirror's cap on upstream requests.
 */
export class BlobHeads {
  /** In flight, per registry client asked: the anonymous one may be refused where the mirror's own is not. */
  readonly #flights = new WeakMap<RegistryClient, Map<string, Promise<Descriptor>>>();
  readonly #upstream: Limiter;

  constructor(upstream: Limiter) {
    this.#upstream = upstream;
  }

  head(registry: RegistryClient, repo: Repository, digest: string): Promise<Descriptor> {
    let flights = this.#flights.get(registry);
    if (flights === undefined) {
      flights = new Map();
      this.#flights.set(registry, flights);
    }
    const key = `${repo.domain}/${repo.path}@${digest}`;
    let flight = flights.get(key);
    if (flight === undefined) {
      const done = flights;
      flight = this.#upstream
        .run(() => headBlob(registry, repo, digest))
        .finally(() => done.delete(key));
      flights.set(key, flight);
    }
    return flight;
  }
}

async function headBlob(
  registry: RegistryClient,
  repo: Repository,
  digest: string,
): Promise<Descriptor> {
  const res = await registry.request(repo, { scope: pullScope(repo) }, (base, headers) => ({
    method: "HEAD",
    url: `${base}${blobPath(repo.path, digest)}`,
    headers,
  }));
  res.body.resume();
  const size = Number(res.headers["content-length"]);
  if (res.status !== 200 || !Number.isSafeInteger(size)) {
    throw new DistributionError(404, "BLOB_UNKNOWN", `blob ${digest} not found upstream`, {
      detail: { digest },
    });
  }
  return { mediaType: "application/octet-stream", digest, size };
}
