import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Descriptor } from "../oci/index.ts";
import type { Reference } from "../reference/index.ts";
import type { Repository } from "../registry/index.ts";
import {
  parseRange,
  refuseRange,
  serveGrowingBlob,
  serveStoredBlob,
  writeBlobHead,
} from "../serve/index.ts";
import { BlobHeads } from "./blob-heads.ts";
import type { Grant, Guard } from "./guard.ts";
import type { MirrorCounters } from "./metrics.ts";
import type { MirrorOptions, MirrorParts } from "./options.ts";
import { repositoryOf } from "./request-reference.ts";

/**
 * Blobs: checked to belong to the repository asked under, sent from the store, or on a
 * miss streamed to the client while they arrive (one upstream fetch however many ask).
 */
export class Blobs {
  readonly #o: MirrorOptions;
  readonly #guard: Guard;
  readonly #count: MirrorCounters;
  readonly #known: Map<string, Descriptor>;
  readonly #heads: BlobHeads;
  /** `repository@digest` the upstream let an anonymous HEAD see: not asked again for each client. */
  readonly #anonymouslyReadable = new Set<string>();

  constructor(parts: MirrorParts) {
    this.#o = parts.options;
    this.#guard = parts.guard;
    this.#count = parts.count;
    this.#known = parts.known;
    this.#heads = new BlobHeads(parts.upstream);
  }

  /**
   * A blob is served under a repository only if the repository contains it: known from
   * its manifests (and, for an anonymous client, the repository proven public), or
   * confirmed by a HEAD upstream as this client may ask it.
   */
  async check(ref: Reference, digest: string, grant: Grant): Promise<void> {
    const repository = repositoryOf(ref);
    const readable = `${repository}@${digest}`;
    const known =
      (grant === "granted" ||
        this.#anonymouslyReadable.has(readable) ||
        (await this.#guard.public.has(repository))) &&
      (await this.#guard.members.contains(repository, digest));
    if (known) return;
    const repo: Repository = { domain: ref.domain, path: ref.path };
    let desc: Descriptor;
    try {
      desc = await this.#heads.head(this.#guard.registryFor(grant, this.#o.registry), repo, digest);
    } catch (err) {
      throw this.#guard.refusal(err, repository);
    }
    this.#known.set(digest, desc);
    this.#guard.members.learn(repository, digest);
    if (grant === "public-only") this.#anonymouslyReadable.add(readable);
  }

  async serve(
    ref: Reference,
    digest: string,
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
  ): Promise<void> {
    const store = this.#o.store;
    const common = {
      "docker-content-digest": digest,
      "docker-distribution-api-version": "registry/2.0",
      "accept-ranges": "bytes",
    };
    if (await store.hasBlob(digest)) {
      this.#count.hits({ kind: "blob" });
      return this.#blobFromStore(digest, req, res, method, common);
    }
    this.#count.misses({ kind: "blob" });
    const repo: Repository = { domain: ref.domain, path: ref.path };
    const desc =
      this.#known.get(digest) ?? (await this.#heads.head(this.#o.registry, repo, digest));
    const range = req.headers.range;
    const span = parseRange(range, desc.size);
    if (method === "HEAD") {
      // The head a GET with this Range would get (200, 206 or 416), with nothing fetched.
      if (span === "unsatisfiable") return refuseRange(res, common, desc.size);
      writeBlobHead(res, common, span, desc.size);
      res.end();
      return;
    }
    if (Array.isArray(span)) {
      // A range of a blob not yet here: fetch it whole first (every byte verified), then answer it.
      const fetched = await this.#o.puller.ensureBlob(repo, desc);
      this.#count.upstreamBytes({ kind: "blob" }, fetched.fetched);
      return this.#blobFromStore(digest, req, res, method, common);
    }
    let done: Promise<{ downloaded: boolean; fetched: number }> | undefined;
    const outcome = await serveGrowingBlob(
      res,
      {
        ingestPath: store.ingestPath(digest),
        blobPath: store.blobPath(digest),
        size: desc.size,
        fetch: (watch) => {
          done = this.#o.puller.ensureBlob(repo, desc, { watch });
          // The first miss downloads; misses that arrive meanwhile join it (one upstream fetch per blob).
          done.then(
            (r) => {
              if (r.downloaded) this.#count.upstream({ kind: "blob" });
              else this.#count.coalesced({ kind: "blob" });
              this.#count.upstreamBytes({ kind: "blob" }, r.fetched);
            },
            () => undefined,
          );
          return done;
        },
      },
      // Headers at once: a client sees the response start while the upstream is asked. A
      // Range left here is ignored (whole blob) or past the end (416, nothing fetched).
      { range, headers: common, announce: "at-once" },
    );
    if (outcome === "complete") this.#count.bytes({ kind: "blob" }, desc.size);
    else
      done?.catch((err: unknown) =>
        this.#o.log({
          level: "error",
          msg: "blob fetch failed; client response aborted",
          digest,
          error: (err as Error).message,
        }),
      );
  }

  async #blobFromStore(
    digest: string,
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    common: Record<string, string>,
  ): Promise<void> {
    const file = await open(this.#o.store.blobPath(digest), "r");
    try {
      const sent = await serveStoredBlob(res, file, {
        method,
        range: req.headers.range,
        headers: common,
      });
      if (sent > 0) this.#count.bytes({ kind: "blob" }, sent);
    } finally {
      await file.close();
    }
  }
}
