import type { Metrics } from "../observe/index.ts";
import type { RegistryClient } from "../registry/index.ts";
import type { Store } from "../store/index.ts";
import { UpstreamAccess } from "./access.ts";
import { FanOut } from "./fan-out.ts";
import { Liveness } from "./liveness.ts";
import type { MembershipSource } from "./membership.ts";
import { type PeerCounters, peerCounters } from "./metrics.ts";
import { type BlobFetcher, type RunningPeerServer, startPeerServer } from "./server.ts";
import { PeerSource } from "./source.ts";

export interface PeerNodeOptions {
  /**
   * This node's peer address (`host:port` of its peer listener, as peers list it).
   * Undefined for a member that only asks peers (`ferry pull --peers`): it is never ranked
   * as an owner, and `start` replaces `listen`.
   */
  self: string | undefined;
  membership: MembershipSource;
  key: Buffer;
  metrics: Metrics;
  log: (entry: Record<string, unknown>) => void;
  /** No bytes from a peer for this long abandons it; default 10 s. */
  idleTimeoutMs?: number;
  /** Health probes: interval and time limit; defaults 2 s and 3 s. */
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  /** Peers served one blob at once before askers are pointed at relays; default 4. */
  fanOut?: number;
}

export interface PeerListenOptions {
  host: string;
  port: number;
  store: Store;
  /** Fetches blobs into the store (the Puller built with `node.source` as its blob source). */
  fetcher: BlobFetcher;
  /** Where upstreams are (access checks ask them); credentials are not used. */
  registry: RegistryClient;
  /** See UpstreamAccessOptions.servesPublicly. */
  servesPublicly?: (repository: string, digest: string) => Promise<boolean>;
  uploadBytesPerSecond?: number;
  maxConnections?: number;
}

/**
 * One node's part in the fleet: the blob source its pull engine asks first
 * (`source`), the health probing of its peers, and its peer listener. Build the
 * node, give `source` to the Puller, then `listen` with that Puller.
 */
export class PeerNode {
  readonly source: PeerSource;
  readonly liveness: Liveness;
  readonly counters: PeerCounters;
  readonly fanOut: FanOut;
  readonly #o: PeerNodeOptions;
  #server: RunningPeerServer | undefined;

  constructor(options: PeerNodeOptions) {
    this.#o = options;
    this.counters = peerCounters(options.metrics);
    this.fanOut = new FanOut(options.fanOut ?? 4, (digest, peers) =>
      this.counters.serving(peers, { digest }),
    );
    this.liveness = new Liveness({
      membership: options.membership,
      self: options.self,
      ...(options.probeIntervalMs === undefined ? {} : { intervalMs: options.probeIntervalMs }),
      ...(options.probeTimeoutMs === undefined ? {} : { timeoutMs: options.probeTimeoutMs }),
    });
    this.source = new PeerSource({
      liveness: this.liveness,
      key: options.key,
      counters: this.counters,
      log: options.log,
      fanOut: this.fanOut,
      ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    });
  }

  /** Starts probing the peers' health, for a member without a listener (`listen` does it otherwise). */
  start(): void {
    this.liveness.start();
  }

  async listen(options: PeerListenOptions): Promise<RunningPeerServer> {
    if (this.#o.self === undefined)
      throw new Error("PeerNode.listen: a member without a peer address cannot listen");
    this.#server = await startPeerServer({
      host: options.host,
      port: options.port,
      key: this.#o.key,
      store: options.store,
      fetcher: options.fetcher,
      source: this.source,
      access: new UpstreamAccess({
        registry: options.registry,
        ...(options.servesPublicly === undefined ? {} : { servesPublicly: options.servesPublicly }),
      }),
      counters: this.counters,
      fanOut: this.fanOut,
      log: this.#o.log,
      ...(options.uploadBytesPerSecond === undefined
        ? {}
        : { uploadBytesPerSecond: options.uploadBytesPerSecond }),
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    });
    this.liveness.start();
    return this.#server;
  }

  async close(): Promise<void> {
    await this.liveness.stop();
    await this.#server?.close();
  }
}
