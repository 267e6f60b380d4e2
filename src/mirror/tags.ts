import type { ServerResponse } from "node:http";
import type { Reference } from "../reference/index.ts";
import type { Limiter } from "../pull/index.ts";
import { isUpstreamFailure } from "./errors.ts";
import type { Grant, Guard } from "./guard.ts";
import type { MirrorOptions, MirrorParts } from "./options.ts";
import { repositoryOf } from "./request-reference.ts";

/** Tag lists: asked upstream, from the store's records when the upstream fails, paged by `n` and `last`. */
export class Tags {
  readonly #o: MirrorOptions;
  readonly #guard: Guard;
  readonly #upstream: Limiter;

  constructor(parts: MirrorParts) {
    this.#o = parts.options;
    this.#guard = parts.guard;
    this.#upstream = parts.upstream;
  }

  async serve(
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
