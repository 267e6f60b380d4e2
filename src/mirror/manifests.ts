import type { ServerResponse } from "node:http";
import { isFerryError } from "../observe/index.ts";
import { type Descriptor, parseManifest } from "../oci/index.ts";
import { formatReference, type Reference } from "../reference/index.ts";
import type { Limiter } from "../pull/index.ts";
import type { Repository } from "../registry/index.ts";
import { isUpstreamFailure } from "./errors.ts";
import type { Grant, Guard } from "./guard.ts";
import type { MirrorCounters } from "./metrics.ts";
import type { MirrorOptions, MirrorParts } from "./options.ts";
import { repositoryOf } from "./request-reference.ts";
import { tagAnswer } from "./tag-freshness.ts";

interface Served {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  stale: boolean;
}

/**
 * Manifests: by digest from the store when the repository is known to hold it, by tag
 * from the store for the TTL, then revalidated upstream, served stale when the upstream fails.
 */
export class Manifests {
  readonly #o: MirrorOptions;
  readonly #guard: Guard;
  readonly #count: MirrorCounters;
  readonly #upstream: Limiter;
  readonly #known: Map<string, Descriptor>;
  readonly #validated = new Map<string, number>();
  /** When the upstream last failed for a tag: within STALE_RETRY_MS it is served stale at once. */
  readonly #failed = new Map<string, number>();
  readonly #manifestFlights = new Map<string, Promise<Served>>();

  constructor(parts: MirrorParts) {
    this.#o = parts.options;
    this.#guard = parts.guard;
    this.#count = parts.count;
    this.#upstream = parts.upstream;
    this.#known = parts.known;
  }

  async serve(ref: Reference, grant: Grant, res: ServerResponse, method: string): Promise<void> {
    const repository = repositoryOf(ref);
    if (grant === "public-only")
      await this.#guard.provePublic(
        { domain: ref.domain, path: ref.path },
        ref.digest ?? (ref.tag as string),
      );
    // A manifest by digest comes from the store only if the repository is known to hold it.
    const cachedOk =
      ref.digest === undefined || (await this.#guard.members.contains(repository, ref.digest));
    const served = await this.#resolveManifest(ref, cachedOk);
    this.#learn(served.bytes, served.mediaType);
    this.#guard.members.learn(repository, served.digest, served);
    const headers: Record<string, string> = {
      "content-type": served.mediaType,
      "content-length": String(served.bytes.length),
      "docker-content-digest": served.digest,
      etag: `"${served.digest}"`,
      "docker-distribution-api-version": "registry/2.0",
    };
    if (served.stale) {
      headers.warning = '110 ferry "Response is Stale: upstream unavailable"';
      headers["x-ferry-stale"] = "true";
    }
    res.writeHead(200, headers);
    res.end(method === "HEAD" ? undefined : served.bytes);
    if (method !== "HEAD") this.#count.bytes({ kind: "manifest" }, served.bytes.length);
  }

  /** A manifest by digest (immutable: from the store when there), or by tag (TTL, then revalidate, stale on error). */
  async #resolveManifest(ref: Reference, cachedOk: boolean): Promise<Served> {
    const repo: Repository = { domain: ref.domain, path: ref.path };
    if (ref.digest !== undefined) {
      if (cachedOk && (await this.#o.store.hasBlob(ref.digest))) {
        this.#count.hits({ kind: "manifest" });
        return this.#fromStore(ref.digest, false);
      }
      return this.#single(`${ref.domain}/${ref.path}@${ref.digest}`, async () => {
        this.#count.misses({ kind: "manifest" });
        const fetched = await this.#upstream.run(() =>
          this.#o.registry.fetchManifest(repo, ref.digest as string),
        );
        this.#count.upstream({ kind: "manifest" });
        this.#count.upstreamBytes({ kind: "manifest" }, fetched.bytes.length);
        await this.#o.store.writeBlob(fetched.digest, fetched.bytes);
        return {
          bytes: fetched.bytes,
          digest: fetched.digest,
          mediaType: mediaTypeOf(fetched.bytes, fetched.mediaType),
          stale: false,
        };
      });
    }
    const name = formatReference(ref);
    const record = await this.#o.store.findImage(name);
    const answer = tagAnswer({
      stored: record !== undefined,
      validatedAt: this.#validated.get(name),
      failedAt: this.#failed.get(name),
      now: Date.now(),
      tagTtlMs: this.#o.tagTtlMs,
    });
    if (record !== undefined && answer === "stale") {
      this.#count.stale({ kind: "manifest" });
      return this.#fromStore(record.sourceDigest, true);
    }
    if (record !== undefined && answer === "fresh") {
      this.#count.hits({ kind: "manifest" });
      await this.#o.store.touch(name);
      return this.#fromStore(record.sourceDigest, false);
    }
    return this.#single(name, async () => {
      this.#count.misses({ kind: "manifest" });
      try {
        const fetched = await this.#upstream.run(() =>
          this.#o.registry.fetchManifest(repo, ref.tag as string),
        );
        this.#count.upstream({ kind: "manifest" });
        this.#count.upstreamBytes({ kind: "manifest" }, fetched.bytes.length);
        const mediaType = mediaTypeOf(fetched.bytes, fetched.mediaType);
        await this.#storeUnlessFull(name, async () => {
          await this.#o.store.writeBlob(fetched.digest, fetched.bytes);
          if (record?.sourceDigest !== fetched.digest) {
            await this.#o.store.recordImage(
              name,
              { mediaType, digest: fetched.digest, size: fetched.bytes.length },
              fetched.digest,
            );
          } else {
            await this.#o.store.touch(name);
          }
        });
        this.#validated.set(name, Date.now());
        this.#failed.delete(name);
        return { bytes: fetched.bytes, digest: fetched.digest, mediaType, stale: false };
      } catch (err) {
        // Only a failing upstream is answered stale; "not found" or "denied" is its answer.
        if (record === undefined || !isUpstreamFailure(err)) throw err;
        this.#count.stale({ kind: "manifest" });
        this.#failed.set(name, Date.now());
        this.#o.log({
          level: "warn",
          msg: "upstream failed; serving the last known digest",
          reference: name,
          digest: record.sourceDigest,
          error: (err as Error).message,
        });
        return this.#fromStore(record.sourceDigest, true);
      }
    });
  }

  /** A verified manifest is served even when the store is full (the store notes the condition). */
  async #storeUnlessFull(reference: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (err) {
      if (!isFerryError(err, "FERRY_DISK_FULL")) throw err;
      this.#o.log({ level: "warn", msg: "store full: serving without storing", reference });
    }
  }

  async #fromStore(digest: string, stale: boolean): Promise<Served> {
    const bytes = await this.#o.store.readBlob(digest);
    return { bytes, digest, mediaType: mediaTypeOf(bytes, undefined), stale };
  }

  #single(key: string, fetch: () => Promise<Served>): Promise<Served> {
    let flight = this.#manifestFlights.get(key);
    if (flight === undefined) {
      flight = fetch().finally(() => this.#manifestFlights.delete(key));
      this.#manifestFlights.set(key, flight);
    } else {
      this.#count.coalesced({ kind: "manifest" });
    }
    return flight;
  }

  /** Remembers the sizes of what a manifest names, for blob misses. */
  #learn(bytes: Buffer, mediaType: string): void {
    try {
      const parsed = parseManifest(bytes, mediaType);
      const list =
        parsed.kind === "index"
          ? parsed.index.manifests
          : [parsed.manifest.config, ...parsed.manifest.layers];
      for (const d of list) this.#known.set(d.digest, d);
    } catch {
      // not a manifest ferry can read: its blobs are looked up upstream on demand
    }
  }
}

function mediaTypeOf(bytes: Buffer, contentType: string | undefined): string {
  try {
    return parseManifest(bytes, contentType).mediaType;
  } catch {
    return contentType ?? "application/octet-stream";
  }
}
