import { open } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { type Repository, registryHostRefusal } from "../registry/index.ts";
import { serveGrowingBlob, serveStoredBlob } from "../serve/index.ts";
import type { Store } from "../store/index.ts";
import type { UpstreamAccess } from "./access.ts";
import {
  ASKER_HEADER,
  askerOf,
  DEPTH_HEADER,
  depthOf,
  FanOut,
  mayRelay,
  type Relay,
  relaysBody,
} from "./fan-out.ts";
import type { PeerCounters } from "./metrics.ts";
import { coveredHeaders, PEER_AUTH_HEADER, ReplayGuard, verifyRequest } from "./signing.ts";
import {
  type BlobDescriptor,
  type PeerSource,
  SIZE_HEADER,
  STORED_ONLY_HEADER,
  UPSTREAM_AUTH_HEADER,
} from "./source.ts";
import { Throttle } from "./throttle.ts";

// require(), not import: see liveness.ts (the peer module is on every `ferry pull`'s path).
const { createServer } = createRequire(import.meta.url)("node:http") as typeof import("node:http");

/** What fetches a blob into the store and reports the ingest file's growth (the pull engine's Puller). */
export interface BlobFetcher {
  ensureBlob(
    repo: Repository,
    desc: BlobDescriptor,
    options?: { watch?: (current: number) => void },
  ): Promise<{ downloaded: boolean; fetched: number }>;
}

export interface PeerServerOptions {
  host: string;
  port: number;
  key: Buffer;
  store: Store;
  fetcher: BlobFetcher;
  source: PeerSource;
  access: UpstreamAccess;
  counters: PeerCounters;
  log: (entry: Record<string, unknown>) => void;
  /** Upload cap for everything sent to peers, bytes/s; 0 = none. */
  uploadBytesPerSecond?: number;
  /** Open connections accepted at once (more are closed at once); default 64. */
  maxConnections?: number;
  /** How long a request for a blob this node is fetching from a peer is held; default 5 s. */
  holdMs?: number;
  /** Whom this node serves each blob to, and its fan-out limit (default: 4 peers a blob). */
  fanOut?: FanOut;
}

/** Half the 10 s an asking node waits for a first byte (PeerSource's idle timeout). */
const HOLD_MS = 5_000;

/** Whether a peer address (`host:port`, `[v6]:port`) is on the host a connection came from. */
function sameHost(peer: string, remote: string | undefined): boolean {
  if (remote === undefined) return false;
  const host = peer
    .replace(/:\d+$/, "")
    .replace(/^\[(.*)\]$/, "$1")
    .toLowerCase();
  return host === remote.replace(/^::ffff:/i, "").toLowerCase();
}

export interface RunningPeerServer {
  readonly address: string;
  close(): Promise<void>;
}

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

/**
 * Whether a peer may name `ns` as the registry this node should contact (see
 * registryHostRefusal). The fleet key is still needed; this narrows what a key holder can
 * make a node contact.
 */
export function acceptableNamespace(ns: string): boolean {
  return registryHostRefusal(ns) === undefined;
}

/**
 * The peer listener: `GET|HEAD /v2/<name>/blobs/<digest>?ns=<registry>` for peers that
 * sign with the fleet key and prove access to the repository, and `GET /healthz`.
 * A blob is served from the store when it is there at request time; otherwise this node
 * fetches it from the upstream (it is the blob's owner for the asking peer) and streams
 * the bytes as they arrive, the last byte only once the whole blob is verified.
 */
export async function startPeerServer(given: PeerServerOptions): Promise<RunningPeerServer> {
  const options = { ...given, fanOut: given.fanOut ?? new FanOut(4) };
  const throttle = new Throttle(options.uploadBytesPerSecond ?? 0);
  const replays = new ReplayGuard();
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(options, throttle, replays, req, res).catch((err: unknown) => {
      options.log({ level: "warn", msg: "peer request failed", url: req.url, error: String(err) });
      if (!res.headersSent) reply(res, 500, "internal error");
      else res.destroy();
    });
    res.on("close", () => options.counters.requests({ status: String(res.statusCode) }));
  };
  const server: Server = createServer(handler);
  server.maxConnections = options.maxConnections ?? 64;
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    address: `${host}:${addr.port}`,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

async function handle(
  o: PeerServerOptions & { fanOut: FanOut },
  throttle: Throttle,
  replays: ReplayGuard,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const raw = req.url ?? "/";
  const method = req.method ?? "GET";
  const url = new URL(raw, "http://peer.invalid");
  if (url.pathname === "/healthz") {
    reply(res, 200, "ok");
    return;
  }
  const m = BLOB_PATH.exec(url.pathname);
  const domain = url.searchParams.get("ns");
  if (m === null || domain === null || domain === "") {
    reply(res, 404, "only /v2/<name>/blobs/<digest>?ns=<registry> and /healthz are served here");
    return;
  }
  if (!acceptableNamespace(domain)) {
    reply(res, 400, "ns must name a registry host (host[:port])");
    return;
  }
  if (method !== "GET" && method !== "HEAD") {
    reply(res, 405, "read-only");
    return;
  }
  const signature = header(req, PEER_AUTH_HEADER);
  if (!verifyRequest(o.key, method, raw, signature, Date.now(), (n) => header(req, n))) {
    reply(res, 401, "peer signature missing, wrong or too old");
    return;
  }
  if (!replays.admit(signature as string)) {
    reply(res, 401, "peer signature already used; sign each request anew");
    return;
  }
  const repo: Repository = { domain, path: m[1] as string };
  const digest = m[2] as string;
  const upload = throttle.share(digest); // blobs take turns under the upload cap
  // A signature that covers headers binds them: the protocol headers it leaves out are
  // ignored (someone on the way added them). Range is never needed covered: the asking
  // node checks Content-Range itself and every byte against the digest.
  const covered = coveredHeaders(signature);
  const peerHeader = (name: string) =>
    covered.length > 0 && !covered.includes(name) ? undefined : header(req, name);
  const verdict = await o.access.check(repo, digest, peerHeader(UPSTREAM_AUTH_HEADER));
  if (verdict !== "allowed") {
    reply(
      res,
      verdict === "denied" ? 403 : 503,
      verdict === "denied"
        ? `the upstream does not let the credential you presented read ${domain}/${repo.path}`
        : "cannot check your access with the upstream now",
    );
    return;
  }
  const askerDepth = depthOf(peerHeader(DEPTH_HEADER));
  if (method === "GET") {
    const asker = askerOf(peerHeader(ASKER_HEADER));
    const ownDepth = o.source.depthOf(digest);
    const size = Number(peerHeader(SIZE_HEADER)) || undefined;
    const admission = o.fanOut.admit(digest, asker, ownDepth, askerDepth, size);
    if (admission.kind === "redirect") {
      replyRelays(res, admission.relays);
      return;
    }
    res.on("close", admission.release);
  }
  const sending = {
    headers: { "docker-content-digest": digest, "accept-ranges": "bytes" },
    pace: upload,
    onSent: (n: number) => o.counters.served({}, n),
  };
  /** Serves the stored blob; false when the store does not hold it. */
  const fromStore = async (): Promise<boolean> => {
    const file = await open(o.store.blobPath(digest), "r").catch(() => undefined);
    if (file === undefined) return false;
    try {
      await serveStoredBlob(res, file, { method, range: header(req, "range"), ...sending });
    } finally {
      await file.close();
    }
    return true;
  };
  if (await fromStore()) return;
  if (method === "HEAD" || peerHeader(STORED_ONLY_HEADER) !== undefined) {
    reply(res, 404, "not stored here");
    return;
  }
  const from = o.source.fetchingFromPeer(digest);
  const relay =
    from !== undefined &&
    !sameHost(from, req.socket.remoteAddress) &&
    mayRelay(o.source.depthOf(digest), askerDepth);
  if (from !== undefined && !relay) {
    // Relaying to its own source (or to a node shallower in the blob's tree) would loop.
    // But this node may only be trying an owner that is gone (a listed member not running yet): hold
    // the request until it stops fetching from a peer, then serve what it has or is now
    // fetching upstream, instead of sending every asker to the registry on its own. Not
    // when the asker is that very peer (each would wait for the other), nor for longer
    // than the asker waits for a first byte.
    const mutual = sameHost(from, req.socket.remoteAddress);
    const cleared = !mutual && (await o.source.whenNotFromPeer(digest, o.holdMs ?? HOLD_MS));
    if (!cleared || o.source.fetchingFromPeer(digest) !== undefined) {
      reply(res, 409, "this node is itself fetching that blob from a peer");
      return;
    }
    if (await fromStore()) return;
  }
  const size = Number(peerHeader(SIZE_HEADER));
  if (!Number.isSafeInteger(size) || size <= 0) {
    reply(res, 400, `${SIZE_HEADER} must give the blob's size`);
    return;
  }
  const desc: BlobDescriptor = { mediaType: "application/octet-stream", digest, size };
  // A relay joins its own download from a peer; an owner fetches from the upstream only.
  const fetch = (watch: (bytes: number) => void) =>
    relay
      ? o.fetcher.ensureBlob(repo, desc, { watch })
      : o.source.upstreamOnly(digest, () => o.fetcher.ensureBlob(repo, desc, { watch }));
  // Headers wait for the first byte, so a download that fails before it gets a status.
  const outcome = await serveGrowingBlob(
    res,
    { ingestPath: o.store.ingestPath(digest), blobPath: o.store.blobPath(digest), size, fetch },
    { range: header(req, "range"), announce: "with-first-byte", ...sending },
  );
  if (outcome === "restarted") reply(res, 503, "download restarted; ask again");
  else if (typeof outcome === "object") {
    const message =
      outcome.failed instanceof Error ? outcome.failed.message : String(outcome.failed);
    reply(res, 502, `this node could not fetch the blob: ${message}`);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** 409 naming relays to ask instead (see fan-out.ts). */
function replyRelays(res: ServerResponse, relays: readonly Relay[]): void {
  const body = relaysBody(relays);
  res
    .writeHead(409, {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
    })
    .end(body);
}

function reply(res: ServerResponse, status: number, message: string): void {
  const body = `${message}\n`;
  res
    .writeHead(status, {
      "content-type": "text/plain",
      "content-length": String(Buffer.byteLength(body)),
    })
    .end(body);
}
