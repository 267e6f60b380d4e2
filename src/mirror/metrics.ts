import type { Metrics } from "../observe/index.ts";

/** The mirror's Prometheus counters (`/metrics`). */
export function mirrorCounters(m: Metrics) {
  return {
    requests: m.counter("ferry_mirror_requests_total", "Requests by kind and status."),
    bytes: m.counter("ferry_mirror_bytes_served_total", "Body bytes sent to clients."),
    hits: m.counter("ferry_mirror_cache_hits_total", "Requests answered from the store."),
    misses: m.counter("ferry_mirror_cache_misses_total", "Requests that needed the upstream."),
    upstream: m.counter(
      "ferry_mirror_upstream_fetches_total",
      "Blobs and manifests fetched from upstreams.",
    ),
    coalesced: m.counter(
      "ferry_mirror_coalesced_waits_total",
      "Misses that joined a fetch already under way.",
    ),
    stale: m.counter(
      "ferry_mirror_stale_serves_total",
      "Tags answered from the store because the upstream failed.",
    ),
  };
}

export type MirrorCounters = ReturnType<typeof mirrorCounters>;
