/**
 * The peers the mirror shares blobs with, for its status page: each member and whether this
 * node takes it for live, and the node's peer traffic (bytes from peers, bytes sent to them,
 * transfers abandoned). The peer layer counts traffic per node, not per peer.
 */
import type { Metrics } from "../observe/index.ts";
import type { PeerNode } from "../peer/index.ts";

export interface PeerStatus {
  readonly members: readonly { readonly peer: string; readonly live: boolean }[];
  readonly bytesFromPeers: number;
  readonly bytesFromUpstream: number;
  readonly bytesToPeers: number;
  readonly transfersAbandoned: number;
  /** Blobs in flight through this node: whom it sends each to, whom it receives it from. */
  readonly blobs: readonly {
    readonly digest: string;
    readonly servingTo: readonly string[];
    readonly serving: number;
    readonly receivingFrom: string | undefined;
    readonly depth: number;
  }[];
}

const ABANDON_REASONS = ["bad-bytes", "stalled", "unreachable", "refused"] as const;

export function peerStatus(node: PeerNode, metrics: Metrics): PeerStatus {
  const live = new Set(node.liveness.live());
  const receiving = new Map(node.source.receiving().map((r) => [r.digest, r]));
  const serving = new Map(node.fanOut.serving().map((s) => [s.digest, s]));
  return {
    members: node.liveness.others().map((peer) => ({ peer, live: live.has(peer) })),
    bytesFromPeers: metrics.value("ferry_peer_blob_bytes_total", { source: "peer" }),
    bytesFromUpstream: metrics.value("ferry_peer_blob_bytes_total", { source: "upstream" }),
    bytesToPeers: metrics.value("ferry_peer_served_bytes_total"),
    transfersAbandoned: ABANDON_REASONS.reduce(
      (sum, reason) => sum + metrics.value("ferry_peer_errors_total", { reason }),
      0,
    ),
    blobs: [...new Set([...serving.keys(), ...receiving.keys()])].sort().map((digest) => ({
      digest,
      servingTo: serving.get(digest)?.receivers ?? [],
      serving: serving.get(digest)?.peers ?? 0,
      receivingFrom: receiving.get(digest)?.peer,
      depth: receiving.get(digest)?.depth ?? 0,
    })),
  };
}
