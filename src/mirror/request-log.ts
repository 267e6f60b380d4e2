/**
 * What the mirror's status page lists: the recent manifest and blob requests (client, image,
 * hit or miss, bytes, time), hits per cached tag, and how the upstream answered lately. The
 * counters credit the request they run under (AsyncLocalStorage), so the mirror's code stays
 * as it is. Bounded; no I/O.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingMessage, ServerResponse } from "node:http";
import { RingBuffer } from "../web/index.ts";
import { parseRequest } from "./route.ts";

export const REQUESTS_KEPT = 200;

export interface RequestEntry {
  readonly at: string;
  readonly client: string;
  /** `repository:tag`, `repository@digest` (manifests) or `repository@digest` (blobs). */
  readonly image: string;
  readonly kind: "manifest" | "blob";
  readonly result: "hit" | "miss" | "error";
  readonly status: number;
  readonly bytes: number;
}

export interface UpstreamHealth {
  /** `ok` after a fetch upstream worked last, `failing` after one failed, else `unknown`. */
  readonly state: "ok" | "failing" | "unknown";
  readonly lastOk?: string;
  readonly lastFailure?: string;
}

/** What a request did, filled in by the counters while it runs. */
interface Tally {
  hits: number;
  misses: number;
  bytes: number;
  /** Answered from the store because the upstream failed. */
  stale: number;
}

const current = new AsyncLocalStorage<Tally>();

/** Credits the request running now (the counters call this; outside a request it does nothing). */
export function creditRequest(key: "hits" | "misses" | "bytesServed" | "stale", by: number): void {
  const tally = current.getStore();
  if (tally === undefined) return;
  if (key === "bytesServed") tally.bytes += by;
  else tally[key] += by;
}

export class RequestLog {
  readonly #ring = new RingBuffer<RequestEntry>(REQUESTS_KEPT);
  /** Manifest hits and last use per `repository:tag`, since start. */
  readonly #tags = new Map<string, { hits: number; lastUsed: string }>();
  #lastOk: string | undefined;
  #lastFailure: string | undefined;

  /** Runs `handle` as the request's context and records the request when its response closes. */
  track(req: IncomingMessage, res: ServerResponse, handle: () => Promise<void>): Promise<void> {
    const tally: Tally = { hits: 0, misses: 0, bytes: 0, stale: 0 };
    // Read now: a closed socket no longer knows its peer.
    const client = req.socket.remoteAddress ?? "?";
    const handled = current.run(tally, handle);
    // The handler counts a streamed blob's bytes after the response has closed: wait for both.
    res.on("close", () => {
      handled.then(
        () => this.#finish(req, res, tally, client),
        () => this.#finish(req, res, tally, client),
      );
    });
    return handled;
  }

  #finish(req: IncomingMessage, res: ServerResponse, tally: Tally, client: string): void {
    let parsed: ReturnType<typeof parseRequest>;
    try {
      parsed = parseRequest(req.method ?? "GET", req.url ?? "/");
    } catch {
      return;
    }
    if (parsed.kind !== "manifest" && parsed.kind !== "blob") return;
    const at = new Date().toISOString();
    const repository = `${parsed.namespace === undefined ? "" : `${parsed.namespace}/`}${parsed.name}`;
    const reference = parsed.kind === "manifest" ? parsed.reference : parsed.digest;
    const image = `${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
    // A stale answer means the upstream failed and the store stood in.
    const failed = res.statusCode >= 500 || tally.stale > 0;
    this.#ring.push({
      at,
      client,
      image,
      kind: parsed.kind,
      result: res.statusCode >= 400 ? "error" : tally.misses > 0 ? "miss" : "hit",
      status: res.statusCode,
      bytes: tally.bytes,
    });
    // The upstream answered (a miss served) or failed (5xx, or a stale answer in its stead).
    if (failed) this.#lastFailure = at;
    else if (tally.misses > 0 && res.statusCode < 400) this.#lastOk = at;
    if (parsed.kind === "manifest" && !reference.includes(":") && res.statusCode < 400) {
      const tag = this.#tags.get(image) ?? { hits: 0, lastUsed: at };
      tag.hits += tally.hits;
      tag.lastUsed = at;
      this.#tags.set(image, tag);
    }
  }

  /** Oldest first. */
  requests(): RequestEntry[] {
    return this.#ring.toArray();
  }

  /** Hits and last use of a `repository:tag` this mirror has answered. */
  tag(image: string): { hits: number; lastUsed: string } | undefined {
    return this.#tags.get(image);
  }

  upstream(): UpstreamHealth {
    const ok = this.#lastOk;
    const failure = this.#lastFailure;
    const state =
      ok === undefined && failure === undefined
        ? "unknown"
        : failure === undefined || (ok !== undefined && ok > failure)
          ? "ok"
          : "failing";
    return {
      state,
      ...(ok === undefined ? {} : { lastOk: ok }),
      ...(failure === undefined ? {} : { lastFailure: failure }),
    };
  }
}
