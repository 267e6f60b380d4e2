import type { ServerResponse } from "node:http";
import type { Reference } from "../reference/index.ts";
import type { Limiter } from "../pull/index.ts";
import { isUpstreamFailure } from "./errors.ts";
import type { Grant, Guard } from "./guard.ts";
import type { MirrorOptions, MirrorParts } from "./options.ts";
import { repositoryOf } from "./request-reference.ts";
import { recordedTags, type TagPaging, tagPage } from "./tag-list.ts";

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
    paging: TagPaging,
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
      const references = (await this.#o.store.images()).map((r) => r.reference);
      tags = recordedTags(references, ref.domain, ref.path);
    }
    const { body: page, link } = tagPage(ref.path, tags, paging);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (link !== undefined) headers.link = link;
    const body = JSON.stringify(page);
    res.writeHead(200, { ...headers, "content-length": String(Buffer.byteLength(body)) });
    res.end(method === "HEAD" ? undefined : body);
  }
}
