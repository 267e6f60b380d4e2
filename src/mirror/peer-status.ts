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
}

const ABANDON_REASONS = ["bad-bytes", "stalled", "unreachable", "refused"] as const;

export function peerStatus(node: PeerNode, metrics: Metrics): PeerStatus {
  const live = new Set(node.liveness.live());
  return {
    members: node.liveness.others().map((peer) => ({ peer, live: live.has(peer) })),
    bytesFromPeers: metrics.value("ferry_peer_blob_bytes_total", { source: "peer" }),
    bytesFromUpstream: metrics.value("ferry_peer_blob_bytes_total", { source: "upstream" }),
    bytesToPeers: metrics.value("ferry_peer_served_bytes_total"),
    transfersAbandoned: ABANDON_REASONS.reduce(
      (sum, reason) => sum + metrics.value("ferry_peer_errors_total", { reason }),
      0,
    ),
  };
}
