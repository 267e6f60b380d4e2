import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isFerryError, type Metrics } from "../observe/index.ts";
import { type Descriptor, parseManifest } from "../oci/index.ts";
import { formatReference, parseReference, type Reference } from "../reference/index.ts";
import { Limiter, type Puller } from "../pull/index.ts";
import type { RegistryClient, Repository } from "../registry/index.ts";
import { serveGrowingBlob, serveStoredBlob } from "../serve/index.ts";
import type { Store } from "../store/index.ts";
import type { AccessPolicy } from "./access.ts";
import { DistributionError, isUpstreamFailure, toDistributionError } from "./errors.ts";
import { BlobHeads } from "./blob-heads.ts";
import { type MirrorCounters, type MirrorTotals, mirrorCounters } from "./metrics.ts";
import { type Grant, Guard } from "./guard.ts";
import { type MirrorRequest, parseRequest } from "./route.ts";
import type { ServedRegistries } from "./served.ts";

/** After an upstream failure, tags are served stale without asking again for this long. */
const STALE_RETRY_MS = 10_000;

export interface MirrorOptions {
  store: Store;
  puller: Puller;
  registry: RegistryClient;
  /** The registry that requests without `?ns=` are for (Docker's `registry-mirrors` means docker.io). */
  defaultNamespace: string;
  /** The registries `?ns=` may name. */
  served: ServedRegistries;
  /** How long a tag is answered from the store before the upstream is asked again. */
  tagTtlMs: number;
  metrics: Metrics;
  log: (entry: Record<string, unknown>) => void;
  /**
   * The mirror's own client auth (`--auth-file`). Without it every client is anonymous
   * and `registry` must fetch without credentials.
   */
  access?: AccessPolicy;
  /** Fetches without credentials, to prove repositories public; defaults to `registry`. */
  anonymousRegistry?: RegistryClient;
  /** Upstream manifest, blob-check and tag-list requests at once (blob downloads: the puller's concurrency); default 32. */
  upstreamRequests?: number;
}

interface Served {
  bytes: Buffer;
  digest: string;
  mediaType: string;
  stale: boolean;
}

/**
 * The read side of the distribution API over ferry's store, pulling through
 * from the upstream on a miss. Blobs stream to the client while they arrive
 * (one upstream fetch however many clients ask); tags are cached for a TTL and
 * served stale when the upstream fails.
 */
export class Mirror {
  readonly #o: MirrorOptions;
  readonly #guard: Guard;
  readonly #validated = new Map<string, number>();
  /** When the upstream last failed for a tag: within STALE_RETRY_MS it is served stale at once. */
  readonly #failed = new Map<string, number>();
  readonly #manifestFlights = new Map<string, Promise<Served>>();
  readonly #heads: BlobHeads;
  /** `repository@digest` the upstream let an anonymous HEAD see: not asked again for each client. */
  readonly #anonymouslyReadable = new Set<string>();
  /** Sizes of blobs named by manifests this mirror has served, so a miss needs no HEAD upstream. */
  readonly #known = new Map<string, Descriptor>();
  readonly #count: MirrorCounters;
  readonly #upstream: Limiter;

  constructor(options: MirrorOptions) {
    this.#o = options;
    this.#upstream = new Limiter(options.upstreamRequests ?? 32);
    this.#heads = new BlobHeads(this.#upstream);
    this.#guard = new Guard(
      options.store,
      options.anonymousRegistry ?? options.registry,
      options.access,
      this.#upstream,
    );
    this.#count = mirrorCounters(options.metrics);
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
        return this.#manifest(ref, this.#guard.grant(req, repositoryOf(ref)), res, method);
      }
      case "blob": {
        const ref = this.#reference(r.namespace, r.name, r.digest);
        const grant = this.#guard.grant(req, repositoryOf(ref));
        await this.#checkBlob(ref, r.digest, grant);
        return this.#blob(ref, r.digest, req, res, method);
      }
      case "tags": {
        const ref = this.#reference(r.namespace, r.name, "latest");
        return this.#tags(
          ref,
          this.#guard.grant(req, repositoryOf(ref)),
          r.namespace,
          r.n,
          r.last,
          res,
          method,
        );
      }
    }
  }

  #reference(namespace: string | undefined, name: string, reference: string): Reference {
    const domain = namespace ?? this.#o.defaultNamespace;
    const sep = reference.includes(":") ? "@" : ":";
    try {
      return parseReference(`${domain}/${name}${sep}${reference}`);
    } catch {
      throw new DistributionError(400, "NAME_INVALID", `invalid repository ${domain}/${name}`);
    }
  }

  async #manifest(
    ref: Reference,
    grant: Grant,
    res: ServerResponse,
    method: string,
  ): Promise<void> {
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
    const validated = this.#validated.get(name);
    const failed = this.#failed.get(name);
    if (record !== undefined && failed !== undefined && Date.now() - failed < STALE_RETRY_MS) {
      // The upstream just failed for this tag: answer stale now rather than wait on retries again.
      this.#count.stale({ kind: "manifest" });
      return this.#fromStore(record.sourceDigest, true);
    }
    if (
      record !== undefined &&
      validated !== undefined &&
      Date.now() - validated < this.#o.tagTtlMs
    ) {
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

  async #blob(
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
    if (method === "HEAD") {
      res
        .writeHead(200, {
          ...common,
          "content-length": String(desc.size),
          "content-type": "application/octet-stream",
        })
        .end();
      return;
    }
    if (req.headers.range !== undefined) {
      // A range of a blob not yet here: fetch it whole first, then answer the range.
      const fetched = await this.#o.puller.ensureBlob(repo, desc);
      this.#count.upstreamBytes({ kind: "blob" }, fetched.fetched);
      return this.#blobFromStore(digest, req, res, method, common);
    }
    let done: Promise<{ downloaded: boolean; fetched: number }> | undefined;
    await serveGrowingBlob(
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
      // Headers at once: a client sees the response start while the upstream is asked.
      { range: undefined, headers: common, announce: "at-once" },
    );
    if (res.writableFinished) this.#count.bytes({ kind: "blob" }, desc.size);
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

  /**
   * A blob is served under a repository only if the repository contains it: known from
   * its manifests (and, for an anonymous client, the repository proven public), or
   * confirmed by a HEAD upstream as this client may ask it.
   */
  async #checkBlob(ref: Reference, digest: string, grant: Grant): Promise<void> {
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

  async #tags(
    ref: Reference,
    grant: Grant,
    namespace: string | undefined,
    n: number | undefined,
    last: string | undefined,
    res: ServerResponse,
    method: string,
  ): Promise<void> {
    let tags: string[];
    const repository = repositoryOf(ref);
    const proven = grant === "granted" || (await this.#guard.public.has(repository));
    try {
      const registry = this.#guard.registryFor(
        proven ? "granted" : "public-only",
        this.#o.registry,
      );
      tags = await this.#upstream.run(() =>
        registry.listTags({ domain: ref.domain, path: ref.path }),
      );
    } catch (err) {
      if (!proven) throw this.#guard.refusal(err, repository);
      if (!isUpstreamFailure(err)) throw err;
      const prefix = `${ref.domain}/${ref.path}:`;
      tags = (await this.#o.store.images())
        .filter((r) => r.reference.startsWith(prefix))
        .map((r) => r.reference.slice(prefix.length));
    }
    const sorted = [...new Set(tags)].sort();
    const after = last === undefined ? sorted : sorted.filter((t) => t > last);
    const page = n === undefined ? after : after.slice(0, n);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (n !== undefined && after.length > page.length && page.length > 0) {
      const next = new URLSearchParams({ n: String(n), last: page[page.length - 1] as string });
      // Paging stays on the registry the client asked about.
      if (namespace !== undefined) next.set("ns", namespace);
      headers.link = `</v2/${ref.path}/tags/list?${next.toString()}>; rel="next"`;
    }
    const body = JSON.stringify({ name: ref.path, tags: page });
    res.writeHead(200, { ...headers, "content-length": String(Buffer.byteLength(body)) });
    res.end(method === "HEAD" ? undefined : body);
  }
}

function repositoryOf(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

function mediaTypeOf(bytes: Buffer, contentType: string | undefined): string {
  try {
    return parseManifest(bytes, contentType).mediaType;
  } catch {
    return contentType ?? "application/octet-stream";
  }
}
