import type { Metrics } from "../observe/index.ts";

/** The peer layer's Prometheus counters (on the node's `/metrics`). */
export function peerCounters(m: Metrics) {
  return {
    received: m.counter(
      "ferry_peer_blob_bytes_total",
      "Blob bytes committed to the store, by source (upstream or peer).",
    ),
    served: m.counter("ferry_peer_served_bytes_total", "Blob bytes sent to peers."),
    requests: m.counter("ferry_peer_requests_total", "Requests on the peer listener, by status."),
    redirects: m.counter(
      "ferry_peer_redirects_total",
      "Requests to peers answered with relays to ask instead (the peer served enough others).",
    ),
    serving: m.gauge(
      "ferry_peer_serving_peers",
      "Peers this node is sending a blob to now, by digest (0 once it sends it to none).",
    ),
    receiving: m.gauge(
      "ferry_peer_receiving",
      "1 while this node receives a blob from a peer, by digest and peer (0 after).",
    ),
    errors: m.counter(
      "ferry_peer_errors_total",
      "Transfers from peers abandoned, by reason (bad-bytes, stalled, unreachable, refused).",
    ),
  };
}

export type PeerCounters = ReturnType<typeof peerCounters>;
