import type { IncomingMessage, ServerResponse } from "node:http";
import type { Descriptor } from "../oci/index.ts";
import { Limiter } from "../pull/index.ts";
import type { Store } from "../store/index.ts";
import { Blobs } from "./blobs.ts";
import { DistributionError, toDistributionError } from "./errors.ts";
import { Guard } from "./guard.ts";
import { Manifests } from "./manifests.ts";
import { type MirrorCounters, type MirrorTotals, mirrorCounters } from "./metrics.ts";
import type { MirrorOptions, MirrorParts } from "./options.ts";
import { repositoryOf, requestReference } from "./request-reference.ts";
import { type MirrorRequest, parseRequest } from "./route.ts";
import { Tags } from "./tags.ts";

export type { MirrorOptions } from "./options.ts";

/**
 * The read side of the distribution API over ferry's store, pulling through
 * from the upstream on a miss. Blobs stream to the client while they arrive
 * (one upstream fetch however many clients ask); tags are cached for a TTL and
 * served stale when the upstream fails.
 */
export class Mirror {
  readonly #o: MirrorOptions;
  readonly #guard: Guard;
  readonly #count: MirrorCounters;
  readonly #manifests: Manifests;
  readonly #blobs: Blobs;
  readonly #tags: Tags;

  constructor(options: MirrorOptions) {
    this.#o = options;
    const upstream = new Limiter(options.upstreamRequests ?? 32);
    this.#guard = new Guard(
      options.store,
      options.anonymousRegistry ?? options.registry,
      options.access,
      upstream,
    );
    this.#count = mirrorCounters(options.metrics);
    const parts: MirrorParts = {
      options,
      guard: this.#guard,
      count: this.#count,
      upstream,
      known: new Map<string, Descriptor>(),
    };
    this.#manifests = new Manifests(parts);
    this.#blobs = new Blobs(parts);
    this.#tags = new Tags(parts);
  }

  /**
   * Whether this mirror would serve `digest` under `repository` (domain/path) to anyone:
   * the repository is proven anonymously readable upstream and contains the digest (peer
   * sharing asks, so a peer cannot read a private blob under a public repository's name).
   */
  async servesPublicly(repository: string, digest: string): Promise<boolean> {
    return (
      (await this.#guard.public.has(repository)) &&
      (await this.#guard.members.contains(repository, digest))
    );
  }

  /** Hits, misses and bytes since start, for the status page. */
  get totals(): Readonly<MirrorTotals> {
    return this.#count.totals;
  }

  get store(): Store {
    return this.#o.store;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    let kind = "unknown";
    try {
      const parsed = parseRequest(method, req.url ?? "/");
      kind = parsed.kind;
      await this.#route(parsed, req, res, method);
    } catch (err) {
      const derr = toDistributionError(err);
      if (derr.status >= 500)
        this.#o.log({
          level: "warn",
          msg: "request failed",
          url: req.url,
          error: String((err as Error).message ?? err),
        });
      derr.write(res, method);
    } finally {
      this.#count.requests({ kind, status: String(res.statusCode) });
    }
  }

  async #route(
    r: MirrorRequest,
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
  ): Promise<void> {
    // Before anything that could connect: a client alone must not pick where the mirror goes.
    if ("namespace" in r) this.#o.served.check(r.namespace);
    switch (r.kind) {
      case "base":
        this.#guard.base(req);
        res.writeHead(200, {
          "content-type": "application/json",
          "docker-distribution-api-version": "registry/2.0",
        });
        res.end(method === "HEAD" ? undefined : "{}");
        return;
      case "health":
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      case "ready": {
        // Ready while full too: what the store holds is still served; the condition says why misses fail.
        const disk = await this.#o.store.pressure.check();
        const body = `${JSON.stringify({ ready: true, disk }, null, 2)}\n`;
        res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
        res.end(method === "HEAD" ? undefined : body);
        return;
      }
      case "metrics":
        this.#count.diskFull((await this.#o.store.pressure.check()).full ? 1 : 0);
        res
          .writeHead(200, { "content-type": "text/plain; version=0.0.4" })
          .end(this.#o.metrics.render());
        return;
      case "write":
        throw new DistributionError(
          405,
          "UNSUPPORTED",
          "this is a read-only mirror: push to the registry itself",
        );
      case "manifest": {
        const ref = this.#reference(r.namespace, r.name, r.reference);
        return this.#manifests.serve(ref, this.#guard.grant(req, repositoryOf(ref)), res, method);
      }
      case "blob": {
        const ref = this.#reference(r.namespace, r.name, r.digest);
        const grant = this.#guard.grant(req, repositoryOf(ref));
        await this.#blobs.check(ref, r.digest, grant);
        return this.#blobs.serve(ref, r.digest, req, res, method);
      }
      case "tags": {
        const ref = this.#reference(r.namespace, r.name, "latest");
        return this.#tags.serve(
          ref,
          this.#guard.grant(req, repositoryOf(ref)),
          { n: r.n, last: r.last, namespace: r.namespace },
          res,
          method,
        );
      }
    }
  }

  #reference(namespace: string | undefined, name: string, reference: string) {
    return requestReference(this.#o.defaultNamespace, namespace, name, reference);
  }
}
