import type { Descriptor } from "../oci/index.ts";
import {
  type BlobLocation,
  isTransientError,
  type RegistryClient,
  type Repository,
} from "../registry/index.ts";

/** A place to fetch one blob from instead of the upstream (a peer node's listener). */
export interface BlobSourceLocation {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** No bytes for this long abandons the source; the pull resumes elsewhere with a Range. */
  readonly idleTimeoutMs: number;
  /** Who serves it, for messages and metrics. */
  readonly peer: string;
}

/**
 * A blob source the pull engine asks before the upstream (node-to-node sharing,
 * `src/peer/`). Whatever it returns is only a hint: bytes are verified like the
 * upstream's, a failing source is reported and skipped, and the upstream is used when
 * it has nothing to offer. Pulls never fail because of a blob source.
 */
export interface BlobSource {
  /**
   * Where to fetch `desc` now, or undefined for the upstream. `authorization` is the
   * header this node would send upstream; `upstreamFailed` says the upstream could not
   * be reached for this blob.
   */
  locate(
    repo: Repository,
    desc: Descriptor,
    context: { authorization: string | undefined; upstreamFailed: boolean },
  ): Promise<BlobSourceLocation | undefined>;
  /** The transfer from `location` failed (bad bytes, stall, refusal, network). */
  failed(location: BlobSourceLocation, desc: Descriptor, cause: unknown): void;
  /** The download of `desc` ended: committed (bytes by source) or failed (undefined). */
  settled(desc: Descriptor, outcome: { fromPeers: number; fromUpstream: number } | undefined): void;
}

/** Where one attempt of a blob download reads from: a blob source's peer, or the registry. */
export interface AttemptLocation {
  location: BlobLocation;
  peer: BlobSourceLocation | undefined;
}

/**
 * The choice of source for each attempt of one blob download: the blob source first
 * (if any), the upstream otherwise, with the bytes each one delivered. If the upstream
 * cannot even be located (down), the blob source is asked for a stored copy; only when
 * it has none does the upstream's error stand.
 */
export class SourcePicker {
  readonly #source: BlobSource | undefined;
  readonly #registry: RegistryClient;
  readonly #repo: Repository;
  readonly #desc: Descriptor;
  readonly #signal: AbortSignal | undefined;
  #upstreamFailed = false;
  fromPeers = 0;
  fromUpstream = 0;

  constructor(
    source: BlobSource | undefined,
    registry: RegistryClient,
    repo: Repository,
    desc: Descriptor,
    signal: AbortSignal | undefined,
  ) {
    this.#source = source;
    this.#registry = registry;
    this.#repo = repo;
    this.#desc = desc;
    this.#signal = signal;
  }

  async next(): Promise<AttemptLocation> {
    let upstream: BlobLocation | undefined;
    let upstreamError: unknown;
    try {
      upstream = await this.#registry.blobLocation(this.#repo, this.#desc.digest, this.#signal);
    } catch (err) {
      if (this.#source === undefined || !isTransientError(err) || this.#signal?.aborted) throw err;
      upstreamError = err;
      this.#upstreamFailed = true;
    }
    const peer = await this.#source?.locate(this.#repo, this.#desc, {
      authorization: upstream?.headers.authorization,
      upstreamFailed: this.#upstreamFailed,
    });
    if (peer !== undefined) {
      return {
        location: { url: peer.url, headers: peer.headers, tls: undefined, mirror: undefined },
        peer,
      };
    }
    if (upstream === undefined) throw upstreamError;
    return { location: upstream, peer: undefined };
  }

  /** An attempt from the upstream failed in a way worth retrying: later attempts also ask peers for stored copies. */
  upstreamFailed(): void {
    this.#upstreamFailed = true;
  }

  peerFailed(peer: BlobSourceLocation, cause: unknown): void {
    this.#source?.failed(peer, this.#desc, cause);
  }

  completed(peer: BlobSourceLocation | undefined, bytes: number): void {
    if (peer === undefined) this.fromUpstream += bytes;
    else this.fromPeers += bytes;
  }

  settle(ok: boolean): void {
    this.#source?.settled(
      this.#desc,
      ok ? { fromPeers: this.fromPeers, fromUpstream: this.fromUpstream } : undefined,
    );
  }
}
