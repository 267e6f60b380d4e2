/**
 * The mirror's status page and `/status`: hits, misses, bytes served and fetched upstream
 * (totals and a sampled history), the store's size over time, the cached tags, the recent
 * requests and how the upstream answered lately. Read-only.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { hostname } from "node:os";
import { type DiskUsage, diskUsage, measureFilesystem } from "../store/index.ts";
import { createStatusPage, redactSecrets, Sampler } from "../web/index.ts";
import type { Mirror } from "./mirror.ts";
import type { PeerStatus } from "./peer-status.ts";
import type { RequestLog } from "./request-log.ts";

/** How often the history is sampled (an hour of samples kept). */
const SAMPLE_EVERY_MS = 10_000;
/** Requests the document carries (newest first); the log keeps more. */
const REQUESTS_SHOWN = 50;

export interface MirrorStatus {
  /** Answers `/status` and the page's paths; false for anything else (the registry API). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

export function createMirrorStatus(
  mirror: Mirror,
  log: (entry: Record<string, unknown>) => void,
  requests: RequestLog,
  peers?: () => PeerStatus,
): MirrorStatus {
  /** The store's images at the last measurement: the cached tags the page lists. */
  let cached: DiskUsage["images"] = [];
  const counters = new Sampler({ measure: () => ({ ...mirror.totals }), everyMs: SAMPLE_EVERY_MS });
  const store = new Sampler({
    measure: async () => {
      const [usage, fs] = await Promise.all([
        diskUsage(mirror.store),
        measureFilesystem(mirror.store.root),
      ]);
      const usedPercent =
        fs.capacity > 0 ? 100 - Math.floor((fs.available * 100) / fs.capacity) : 0;
      cached = usage.images;
      return { bytes: usage.bytes, usedPercent };
    },
    everyMs: SAMPLE_EVERY_MS,
    onError: (err) => log({ level: "debug", msg: "store not measured", error: String(err) }),
  });
  let started = false;
  const document = () => {
    // Sampling starts with the first look, so a mirror nobody watches does no extra work.
    if (!started) {
      started = true;
      counters.start();
      store.start();
    }
    return {
      kind: "mirror",
      node: hostname(),
      time: new Date().toISOString(),
      mirror: {
        ...mirror.totals,
        samples: [...counters.samples(), { ...mirror.totals, t: Date.now() }],
        repositories: cached.map((image) => {
          const seen =
            requests.tag(image.reference) ?? requests.tag(withoutRegistry(image.reference));
          return {
            image: image.reference,
            bytes: image.bytes,
            lastUsed: seen?.lastUsed ?? image.lastUsedAt,
            hits: seen?.hits ?? 0,
          };
        }),
        requests: requests.requests().slice(-REQUESTS_SHOWN).reverse(),
        upstream: requests.upstream(),
        ...(peers === undefined ? {} : { peers: peers() }),
      },
      storeUsage: { samples: store.samples() },
      disk: mirror.store.pressure.condition(),
    };
  };
  const page = createStatusPage({ status: document, log });
  return {
    handle(req, res) {
      const path = new URL(req.url ?? "/", "http://mirror.invalid").pathname;
      if (path !== "/status") return page.handle(req, res);
      if (req.method !== "GET" && req.method !== "HEAD") return page.handle(req, res); // 405
      // The disk condition is measured first, so a full disk that has space again reads as recovered.
      void mirror.store.pressure
        .check()
        .catch(() => undefined)
        .then(() => {
          const body = `${JSON.stringify(redactSecrets(document()), null, 2)}\n`;
          res.writeHead(200, {
            "content-type": "application/json; charset=utf-8",
            "content-length": Buffer.byteLength(body),
            "cache-control": "no-store",
          });
          res.end(req.method === "HEAD" ? undefined : body);
        });
      return true;
    },
    close() {
      page.close();
      counters.stop();
      store.stop();
    },
  };
}

/** A stored reference as a client without `?ns=` names it: the default registry is implied. */
function withoutRegistry(reference: string): string {
  const slash = reference.indexOf("/");
  return slash < 0 ? reference : reference.slice(slash + 1);
}
