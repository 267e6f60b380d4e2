import type { Metrics } from "../observe/index.ts";
import { creditRequest } from "./request-log.ts";

/** Sums over every label of the counters the status page shows. */
export interface MirrorTotals {
  hits: number;
  misses: number;
  bytesServed: number;
  bytesUpstream: number;
}

type Counter = (labels?: Record<string, string>, by?: number) => void;

/** A counter that also credits the request it counts for (the status page's request log). */
const credited =
  (counter: Counter): Counter =>
  (labels, by = 1) => {
    creditRequest("stale", by);
    counter(labels, by);
  };

/** The mirror's Prometheus counters (`/metrics`), some also summed for the status page. */
export function mirrorCounters(m: Metrics) {
  const totals: MirrorTotals = { hits: 0, misses: 0, bytesServed: 0, bytesUpstream: 0 };
  const summed =
    (counter: Counter, key: keyof MirrorTotals): Counter =>
    (labels, by = 1) => {
      totals[key] += by;
      if (key !== "bytesUpstream") creditRequest(key, by);
      counter(labels, by);
    };
  return {
    totals: totals as Readonly<MirrorTotals>,
    requests: m.counter("ferry_mirror_requests_total", "Requests by kind and status."),
    bytes: summed(
      m.counter("ferry_mirror_bytes_served_total", "Body bytes sent to clients."),
      "bytesServed",
    ),
    hits: summed(
      m.counter("ferry_mirror_cache_hits_total", "Requests answered from the store."),
      "hits",
    ),
    misses: summed(
      m.counter("ferry_mirror_cache_misses_total", "Requests that needed the upstream."),
      "misses",
    ),
    upstream: m.counter(
      "ferry_mirror_upstream_fetches_total",
      "Blobs and manifests fetched from upstreams.",
    ),
    upstreamBytes: summed(
      m.counter(
        "ferry_mirror_upstream_bytes_total",
        "Bytes of blobs and manifests fetched from upstreams.",
      ),
      "bytesUpstream",
    ),
    coalesced: m.counter(
      "ferry_mirror_coalesced_waits_total",
      "Misses that joined a fetch already under way.",
    ),
    diskFull: m.gauge(
      "ferry_mirror_store_disk_full",
      "1 while writes to the store find its disk full (what it holds is still served).",
    ),
    stale: credited(
      m.counter(
        "ferry_mirror_stale_serves_total",
        "Tags answered from the store because the upstream failed.",
      ),
    ),
  };
}

export type MirrorCounters = ReturnType<typeof mirrorCounters>;
