import { parsePeerAddress } from "./membership.ts";

/** The asking node's own peer address (absent for a member without a listener). */
export const ASKER_HEADER = "x-ferry-asker";
/** The asking node's depth in the blob's relay tree, sent only while it relays that blob to others. */
export const DEPTH_HEADER = "x-ferry-depth";
/** The registry-style error code of a 409 that points the asker at relays instead. */
export const RELAYS_CODE = "PEER_RELAYS";

/** Blobs smaller than this go to every asker at once: a redirect and a hop cost more than sending them. */
export const SMALL_BLOB_BYTES = 1 << 20;

/** A node receiving a blob from this one, which can relay it onward; `depth` is its place in the tree. */
export interface Relay {
  peer: string;
  depth: number;
}

/** What the listener does with one request for a blob. */
export type Admission =
  | { kind: "serve"; release: () => void }
  | { kind: "redirect"; relays: Relay[] };

interface Session {
  asker: string | undefined;
}

/**
 * The relay tree of each blob as this node sees it: whom it serves now, per blob. A node
 * serves at most `limit` peers a blob at once (its uplink divided among them); the next
 * asker is pointed at those peers, which receive the blob and relay it on as it arrives.
 * Every relay is deeper than the node that names it, and an asker that relays the blob
 * itself is only pointed at shallower nodes, so no relay ever waits on its own downstream.
 */
export class FanOut {
  readonly limit: number;
  readonly #serving = new Map<string, Set<Session>>();
  /** Per blob, where the next redirect starts in the list of relays (spreads askers over them). */
  readonly #turn = new Map<string, number>();

  readonly #changed: (digest: string, peers: number) => void;

  /** `changed`: told the number of peers served a blob each time it changes (for /metrics). */
  constructor(limit: number, changed: (digest: string, peers: number) => void = () => {}) {
    this.limit = Math.max(1, limit);
    this.#changed = changed;
  }

  /** How many peers this node is serving `digest` to now. */
  downstream(digest: string): number {
    return this.#serving.get(digest)?.size ?? 0;
  }

  /** The peers (with a listener) this node is serving `digest` to now. */
  receivers(digest: string): string[] {
    const sessions = this.#serving.get(digest) ?? new Set();
    return [...new Set([...sessions].flatMap((s) => (s.asker === undefined ? [] : [s.asker])))];
  }

  /** Every blob this node serves now, with its receivers (for /status and /metrics). */
  serving(): Array<{ digest: string; peers: number; receivers: string[] }> {
    return [...this.#serving.keys()].map((digest) => ({
      digest,
      peers: this.downstream(digest),
      receivers: this.receivers(digest),
    }));
  }

  /**
   * Serve `asker` (at most `limit` at once), or point it at relays: peers receiving the blob
   * from this node, one level deeper than `ownDepth`, shallower than the asker's own depth
   * when it relays the blob itself. With no such relay, or for a small blob (`size` bytes),
   * this node serves beyond its limit.
   */
  admit(
    digest: string,
    asker: string | undefined,
    ownDepth: number,
    askerDepth: number | undefined,
    size = Number.POSITIVE_INFINITY,
  ): Admission {
    const relays =
      size < SMALL_BLOB_BYTES || (askerDepth !== undefined && ownDepth + 1 >= askerDepth)
        ? []
        : this.receivers(digest).filter((r) => r !== asker);
    if (this.downstream(digest) >= this.limit && relays.length > 0) {
      const turn = (this.#turn.get(digest) ?? 0) % relays.length;
      this.#turn.set(digest, turn + 1);
      const rotated = [...relays.slice(turn), ...relays.slice(0, turn)];
      return { kind: "redirect", relays: rotated.map((peer) => ({ peer, depth: ownDepth + 1 })) };
    }
    const session: Session = { asker };
    let sessions = this.#serving.get(digest);
    if (sessions === undefined) {
      sessions = new Set();
      this.#serving.set(digest, sessions);
    }
    sessions.add(session);
    this.#changed(digest, sessions.size);
    let released = false;
    return {
      kind: "serve",
      release: () => {
        if (released) return;
        released = true;
        sessions.delete(session);
        this.#changed(digest, sessions.size);
        if (sessions.size === 0 && this.#serving.get(digest) === sessions) {
          this.#serving.delete(digest);
          this.#turn.delete(digest);
        }
      },
    };
  }
}

/** The body of a redirect: a registry-style error whose message lists `peer@depth` relays. */
export function relaysBody(relays: readonly Relay[]): string {
  const list = relays.map((r) => `${r.peer}@${r.depth}`).join(" ");
  return JSON.stringify({ errors: [{ code: RELAYS_CODE, message: `relays ${list}` }] });
}

const RELAYS = /relays ((?:\S+@\d+ ?)+)/;

/** The relays a redirect named (from the pull engine's error for it); [] if it is not one. */
export function relaysOf(cause: unknown): Relay[] {
  const fields = (cause as { fields?: { registryCode?: unknown } } | undefined)?.fields;
  if (fields?.registryCode !== RELAYS_CODE) return [];
  const list = RELAYS.exec(cause instanceof Error ? cause.message : "")?.[1] ?? "";
  return list
    .trim()
    .split(" ")
    .flatMap((item) => {
      const at = item.lastIndexOf("@");
      const depth = Number(item.slice(at + 1));
      return at > 0 && Number.isSafeInteger(depth) ? [{ peer: item.slice(0, at), depth }] : [];
    });
}

/** The asker's peer address from its header, when it is one (anything else: none). */
export function askerOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    return parsePeerAddress(text);
  } catch {
    return undefined;
  }
}

/** The asker's depth from its header (undefined: it relays nothing of this blob). */
export function depthOf(text: string | undefined): number | undefined {
  const depth = Number(text);
  return text !== undefined && Number.isSafeInteger(depth) && depth >= 0 ? depth : undefined;
}

/**
 * Whether a node at `ownDepth`, receiving a blob from a peer, may relay it to an asker at
 * `askerDepth`: only to one deeper (or one that relays nothing), so no relay feeds its source.
 */
export function mayRelay(ownDepth: number, askerDepth: number | undefined): boolean {
  return askerDepth === undefined || askerDepth > ownDepth;
}
