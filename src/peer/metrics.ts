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
    errors: m.counter(
      "ferry_peer_errors_total",
      "Transfers from peers abandoned, by reason (bad-bytes, stalled, unreachable, refused).",
    ),
  };
}

export type PeerCounters = ReturnType<typeof peerCounters>;
