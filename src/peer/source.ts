import { isFerryError } from "../observe/index.ts";
import type { BlobSourceLocation, Descriptor } from "../oci/index.ts";
import type { Repository } from "../registry/index.ts";
import { ASKER_HEADER, DEPTH_HEADER, type FanOut, type Relay, relaysOf } from "./fan-out.ts";
import type { Liveness } from "./liveness.ts";
import type { PeerCounters } from "./metrics.ts";
import { rank } from "./rendezvous.ts";
import { peerRequest, STORED_ONLY_HEADER } from "./blobs.ts";

/** Headers of the peer protocol besides the signature. */
export const SIZE_HEADER = "x-ferry-size";
export const UPSTREAM_AUTH_HEADER = "x-ferry-upstream-authorization";
export { STORED_ONLY_HEADER };

/** The part of a descriptor the peer layer needs. */
export type BlobDescriptor = Pick<Descriptor, "mediaType" | "digest" | "size">;

/** Where to try a blob before the upstream: a peer's listener, with signed headers. */
export type PeerLocation = BlobSourceLocation;

export interface PeerSourceOptions {
  liveness: Liveness;
  key: Buffer;
  counters: PeerCounters;
  log: (entry: Record<string, unknown>) => void;
  /** Default 10 s. */
  idleTimeoutMs?: number;
  /** Whom this node's listener serves each blob to (its depth goes with requests while it relays). */
  fanOut?: FanOut;
}

/** How long a peer is left alone after each kind of failure (doubling on repeats, up to 10 min). */
const PENALTY_MS = { "bad-bytes": 60_000, stalled: 15_000, unreachable: 5_000, refused: 0 };
const MAX_PENALTY_MS = 10 * 60_000;
/** Redirects followed for one blob before a redirecting peer counts as tried (a tree is shallow). */
const MAX_REDIRECTS = 64;

type Reason = keyof typeof PENALTY_MS;

/**
 * The blob source the pull engine asks before the upstream. For each digest it ranks
 * this node and the live peers by rendezvous hashing: if this node ranks first it is
 * the owner and fetches from the upstream itself; otherwise it fetches from the owner,
 * which streams while it downloads. A peer that fails (bad bytes, stall, unreachable,
 * refusal) is skipped for this blob and penalized for a while; the next-ranked member
 * takes over, down to the upstream. When the upstream itself fails, every live peer is
 * asked for a stored copy. Nothing a peer sends is trusted: the pull engine commits a
 * blob only when the sha256 of the whole file matches.
 */
export class PeerSource {
  readonly #o: PeerSourceOptions;
  /** Digests being fetched on a peer's behalf: those go to the upstream (one hop at most). */
  readonly #upstreamOnly = new Map<string, number>();
  /** Digests this node is fetching from a peer right now, and from whom. */
  readonly #fromPeer = new Map<string, string>();
  /** Who waits for a digest to leave #fromPeer (the listener holding a peer's request). */
  readonly #fromPeerEnded = new Map<string, Set<() => void>>();
  /** Peers already tried (and failed) for a digest during its current download. */
  readonly #tried = new Map<string, Set<string>>();
  readonly #penalties = new Map<string, { until: number; strikes: number }>();
  /** Relays a redirect named for a digest, to try before the rank order. */
  readonly #relays = new Map<string, Relay[]>();
  /** Redirects followed per digest during its current download. */
  readonly #redirects = new Map<string, number>();
  /** This node's depth in a digest's relay tree (0: it fetches upstream), kept while it downloads. */
  readonly #depth = new Map<string, number>();

  constructor(options: PeerSourceOptions) {
    this.#o = options;
  }

  /** This node's peer address; undefined when it has no listener (it then owns no blob). */
  get self(): string | undefined {
    return this.#o.liveness.self;
  }

  /**
   * A peer to fetch `desc` from now, or undefined for the upstream. `authorization` is
   * the header this node would send upstream (presented to the peer as proof of access);
   * `upstreamFailed` says the upstream could not be reached for this blob.
   */
  async locate(
    repo: Repository,
    desc: BlobDescriptor,
    context: { authorization: string | undefined; upstreamFailed: boolean },
  ): Promise<PeerLocation | undefined> {
    const digest = desc.digest;
    if (this.#upstreamOnly.has(digest)) return undefined;
    const tried = this.#tried.get(digest) ?? new Set<string>();
    const now = Date.now();
    const usable = (m: string) => !tried.has(m) && (this.#penalties.get(m)?.until ?? 0) <= now;
    let peer: string | undefined;
    let depth = 1;
    const relay = context.upstreamFailed ? undefined : this.#relay(digest, usable);
    if (relay !== undefined) {
      peer = relay.peer;
      depth = relay.depth + 1;
    } else if (context.upstreamFailed) {
      // The upstream is gone: any live peer may hold a copy; ask them in rank order.
      peer = rank(this.#o.liveness.live(), digest).find(usable);
    } else {
      const self = this.self;
      const members = this.#o.liveness.live();
      // A member without a listener is never an owner: it asks the live peers in rank order.
      for (const m of rank(self === undefined ? members : [self, ...members], digest)) {
        if (m === self) break; // this node owns the blob: it goes to the upstream
        if (usable(m)) {
          peer = m;
          break;
        }
      }
    }
    if (peer === undefined) {
      this.#stopFromPeer(digest);
      this.#depth.set(digest, 0);
      return undefined;
    }
    const relaying = (this.#o.fanOut?.downstream(digest) ?? 0) > 0;
    const ownDepth = this.#depth.get(digest);
    this.#receiving(digest, peer);
    this.#depth.set(digest, depth);
    const protocol: Record<string, string> = { [SIZE_HEADER]: String(desc.size) };
    if (this.self !== undefined) protocol[ASKER_HEADER] = this.self;
    // Peers this node relays to must not become its source: they are deeper than it.
    if (relaying && ownDepth !== undefined) protocol[DEPTH_HEADER] = String(ownDepth);
    if (context.authorization !== undefined) protocol[UPSTREAM_AUTH_HEADER] = context.authorization;
    if (context.upstreamFailed) protocol[STORED_ONLY_HEADER] = "1";
    const { path, headers } = peerRequest(this.#o.key, "GET", repo, digest, protocol);
    return {
      url: `http://${peer}${path}`,
      headers,
      idleTimeoutMs: this.#o.idleTimeoutMs ?? 10_000,
      peer,
    };
  }

  /**
   * The first relay a redirect named that is live, usable and shallower than this node
   * when it relays the blob itself.
   */
  #relay(digest: string, usable: (m: string) => boolean): Relay | undefined {
    const relays = this.#relays.get(digest);
    if (relays === undefined) return undefined;
    const live = new Set(this.#o.liveness.live());
    const relaying = (this.#o.fanOut?.downstream(digest) ?? 0) > 0;
    const own = this.#depth.get(digest);
    return relays.find(
      (r) =>
        live.has(r.peer) && usable(r.peer) && !(relaying && own !== undefined && r.depth >= own),
    );
  }

  /** This node's depth in `digest`'s relay tree while it downloads it: 0 from the upstream. */
  depthOf(digest: string): number {
    return this.#fromPeer.has(digest) ? (this.#depth.get(digest) ?? 1) : 0;
  }

  /** A transfer from `location` failed: skip that peer for this blob and penalize it. */
  failed(location: PeerLocation, desc: BlobDescriptor, cause: unknown): void {
    const relays = relaysOf(cause);
    if (relays.length > 0) {
      // Not a failure: the peer serves enough others and names relays (members only). This
      // node still gets the blob from a peer: its listener keeps relaying, not fetching upstream.
      const members = new Set(this.#o.liveness.others());
      this.#relays.set(
        desc.digest,
        relays.filter((r) => members.has(r.peer)),
      );
      const redirects = (this.#redirects.get(desc.digest) ?? 0) + 1;
      this.#redirects.set(desc.digest, redirects);
      this.#o.counters.redirects();
      if (redirects < MAX_REDIRECTS) return;
    }
    this.#stopFromPeer(desc.digest);
    const reason = classify(cause);
    let tried = this.#tried.get(desc.digest);
    if (tried === undefined) {
      tried = new Set();
      this.#tried.set(desc.digest, tried);
    }
    tried.add(location.peer);
    this.#o.counters.errors({ reason });
    if (reason === "unreachable") this.#o.liveness.markDown(location.peer);
    const base = PENALTY_MS[reason];
    if (base > 0) {
      const strikes = (this.#penalties.get(location.peer)?.strikes ?? 0) + 1;
      const ms = Math.min(MAX_PENALTY_MS, base * 2 ** (strikes - 1));
      this.#penalties.set(location.peer, { until: Date.now() + ms, strikes });
    }
    this.#o.log({
      level: "warn",
      msg: "peer abandoned; trying the next source",
      peer: location.peer,
      digest: desc.digest,
      reason,
      error: cause instanceof Error ? cause.message : String(cause),
    });
  }

  /** The download of `desc` ended (committed, or failed for good): forget its per-blob state. */
  settled(
    desc: BlobDescriptor,
    outcome: { fromPeers: number; fromUpstream: number } | undefined,
  ): void {
    this.#stopFromPeer(desc.digest);
    this.#tried.delete(desc.digest);
    this.#relays.delete(desc.digest);
    this.#redirects.delete(desc.digest);
    this.#depth.delete(desc.digest);
    if (outcome === undefined) return;
    if (outcome.fromPeers > 0) this.#o.counters.received({ source: "peer" }, outcome.fromPeers);
    if (outcome.fromUpstream > 0)
      this.#o.counters.received({ source: "upstream" }, outcome.fromUpstream);
  }

  /** The peer this node is fetching `digest` from now, if any (the listener then does not relay it). */
  fetchingFromPeer(digest: string): string | undefined {
    return this.#fromPeer.get(digest);
  }

  /**
   * Resolves true once this node no longer fetches `digest` from a peer (it has the blob, or
   * moved on: to the upstream or to the next peer after this one's failure), false after `ms`.
   */
  whenNotFromPeer(digest: string, ms: number): Promise<boolean> {
    if (!this.#fromPeer.has(digest)) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiters = this.#fromPeerEnded.get(digest);
      if (waiters === undefined) {
        waiters = new Set();
        this.#fromPeerEnded.set(digest, waiters);
      }
      const ended = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(ended);
        if (waiters.size === 0 && this.#fromPeerEnded.get(digest) === waiters)
          this.#fromPeerEnded.delete(digest);
        resolve(false);
      }, ms);
      timer.unref(); // a held request must not keep a stopping process alive
      waiters.add(ended);
    });
  }

  /** The blobs this node receives from peers now: from whom, at what depth of the blob's tree. */
  receiving(): Array<{ digest: string; peer: string; depth: number }> {
    return [...this.#fromPeer].map(([digest, peer]) => ({
      digest,
      peer,
      depth: this.depthOf(digest),
    }));
  }

  #receiving(digest: string, peer: string): void {
    const was = this.#fromPeer.get(digest);
    if (was !== undefined && was !== peer) this.#o.counters.receiving(0, { digest, peer: was });
    this.#fromPeer.set(digest, peer);
    this.#o.counters.receiving(1, { digest, peer });
  }

  #stopFromPeer(digest: string): void {
    const was = this.#fromPeer.get(digest);
    if (was !== undefined) this.#o.counters.receiving(0, { digest, peer: was });
    this.#fromPeer.delete(digest);
    const waiters = this.#fromPeerEnded.get(digest);
    if (waiters === undefined) return;
    this.#fromPeerEnded.delete(digest);
    for (const ended of waiters) ended();
  }

  /** While `run` goes, downloads of `digest` go to the upstream (it serves a peer that chose this node as owner). */
  async upstreamOnly<T>(digest: string, run: () => Promise<T>): Promise<T> {
    this.#upstreamOnly.set(digest, (this.#upstreamOnly.get(digest) ?? 0) + 1);
    try {
      return await run();
    } finally {
      const n = (this.#upstreamOnly.get(digest) ?? 1) - 1;
      if (n <= 0) this.#upstreamOnly.delete(digest);
      else this.#upstreamOnly.set(digest, n);
    }
  }
}

function classify(cause: unknown): Reason {
  if (isFerryError(cause, "FERRY_DIGEST_MISMATCH") || isFerryError(cause, "FERRY_SIZE_MISMATCH"))
    return "bad-bytes";
  if (isFerryError(cause, "FERRY_TIMEOUT")) return "stalled";
  if (isFerryError(cause, "FERRY_UNREACHABLE")) return "unreachable";
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EHOSTUNREACH")
    return "unreachable";
  return "refused";
}
