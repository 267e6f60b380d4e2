import type { BlobSourceLocation, Descriptor } from "../oci/index.ts";
import { FerryError } from "../observe/index.ts";
import {
  type BlobLocation,
  type Deadline,
  isTransientError,
  type RegistryClient,
  type Repository,
} from "../registry/index.ts";
import { resumedFromOf } from "./transfer.ts";

export type { BlobSourceLocation };

/**
 * Where to fetch a blob instead of the upstream, asked by the pull engine before each attempt
 * (node-to-node sharing, `src/peer/`); not `oci/`'s `BlobSource`, whose `open` would add a copy
 * and a hash pass to the download (design note 18). Whatever it returns is only a hint: bytes
 * are verified like the upstream's, a failing location is reported and skipped, and the
 * upstream is used when it has nothing to offer. Pulls never fail because of a locator.
 */
export interface BlobLocator {
  /**
   * Where to fetch `desc` now, or undefined for the upstream. `authorization` is the
   * upstream registry's bearer token this node holds for the repository (never a mirror's
   * credential, never a Basic password; undefined then); `upstreamFailed` says the upstream
   * could not be reached for this blob.
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
  readonly #source: BlobLocator | undefined;
  readonly #registry: RegistryClient;
  readonly #repo: Repository;
  readonly #desc: Descriptor;
  readonly #signal: AbortSignal | undefined;
  #upstreamFailed = false;
  /** Peers whose bytes the ingest file may hold now (a peer attempt that broke off keeps what it wrote). */
  readonly #prefixFrom = new Map<string, BlobSourceLocation>();
  /**
   * After an attempt that resumed over peers' bytes failed verification: those peers, and
   * the source that resumed. Which part was wrong is unknown until the blob verifies from
   * the resumer alone (then the peers' prefix was: they are blamed).
   */
  #suspects: { peers: BlobSourceLocation[]; resumer: string } | undefined;
  /** Every attempt since the suspects were recorded came from their resumer. */
  #onlyResumer = true;
  /** A restart for a prefix of unknown origin (left by an earlier run) was already made. */
  #restartedUnknown = false;
  fromPeers = 0;
  fromUpstream = 0;

  constructor(
    source: BlobLocator | undefined,
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

  /** `deadline`: the blob's, which the upstream's auth (ping, token) counts against too. */
  async next(deadline?: Deadline): Promise<AttemptLocation> {
    let upstream: BlobLocation | undefined;
    let upstreamError: unknown;
    try {
      upstream = await this.#registry.blobLocation(
        this.#repo,
        this.#desc.digest,
        this.#signal,
        deadline,
      );
    } catch (err) {
      if (this.#source === undefined || !isTransientError(err) || this.#signal?.aborted) throw err;
      upstreamError = err;
      this.#upstreamFailed = true;
    }
    const peer = await this.#source?.locate(this.#repo, this.#desc, {
      authorization: presentable(upstream),
      upstreamFailed: this.#upstreamFailed,
    });
    if (this.#suspects !== undefined && sourceKey(peer) !== this.#suspects.resumer)
      this.#onlyResumer = false;
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

  /**
   * An attempt from `peer` failed without a verdict on its bytes (network, stall, refusal);
   * `wroteBytes` says the ingest file changed, so it now holds bytes from that peer.
   */
  peerFailed(peer: BlobSourceLocation, cause: unknown, wroteBytes = false): void {
    if (wroteBytes) this.#prefixFrom.set(peer.peer, peer);
    this.#source?.failed(peer, this.#desc, cause);
  }

  /**
   * An attempt from `peer` (undefined: the registry) failed verification; the ingest file
   * is gone. True: the next attempt starts from zero (the caller retries without counting
   * it); false: the error stands for the caller's usual handling. An attempt that resumed
   * over bytes peers wrote does not blame the source that resumed (the prefix may be the
   * bad part): those peers become suspects, blamed once the blob verifies from that source
   * alone. Otherwise a peer is blamed for its own bytes.
   */
  verificationFailed(peer: BlobSourceLocation | undefined, cause: unknown): boolean {
    const resumedFrom = resumedFromOf(cause) ?? 0;
    const prefix = [...this.#prefixFrom.values()];
    this.#prefixFrom.clear();
    const current = sourceKey(peer);
    if (resumedFrom > 0 && prefix.length > 0) {
      this.#suspects = { peers: prefix, resumer: current };
      this.#onlyResumer = true;
      return true;
    }
    if (resumedFrom > 0 && !this.#restartedUnknown) {
      // Bytes of unknown origin (an earlier run's partial file): start over once, blaming no one.
      this.#restartedUnknown = true;
      return true;
    }
    // The resumer's own bytes are wrong: nothing says the suspects' prefix was.
    if (this.#suspects?.resumer === current) this.#suspects = undefined;
    if (peer === undefined) return false;
    this.#source?.failed(peer, this.#desc, cause);
    return true;
  }

  completed(peer: BlobSourceLocation | undefined, bytes: number): void {
    if (peer === undefined) this.fromUpstream += bytes;
    else this.fromPeers += bytes;
    const suspects = this.#suspects;
    this.#suspects = undefined;
    if (suspects === undefined || !this.#onlyResumer) return;
    // The blob verified from the resumer alone: the prefix the suspects wrote was wrong.
    for (const p of suspects.peers) {
      this.#source?.failed(
        p,
        this.#desc,
        new FerryError(
          "FERRY_DIGEST_MISMATCH",
          `peer ${p.peer} sent bytes of ${this.#desc.digest} that did not match (found after it broke off)`,
        ),
      );
    }
  }

  settle(ok: boolean): void {
    this.#source?.settled(
      this.#desc,
      ok ? { fromPeers: this.fromPeers, fromUpstream: this.fromUpstream } : undefined,
    );
  }
}

function sourceKey(peer: BlobSourceLocation | undefined): string {
  return peer === undefined ? "" : peer.peer;
}

/**
 * The credential a peer may see as proof of access: the upstream registry's own bearer
 * token (scoped to this repository, short-lived). A mirror's credential is for another
 * host (the serving node checks against the upstream), and a Basic credential is a
 * password: neither leaves this node.
 */
function presentable(upstream: BlobLocation | undefined): string | undefined {
  if (upstream === undefined || upstream.mirror !== undefined) return undefined;
  const auth = upstream.headers.authorization ?? upstream.headers.Authorization;
  return auth !== undefined && /^Bearer\s+\S/i.test(auth) ? auth : undefined;
}
