import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Metrics } from "../observe/index.ts";
import type { PeerNode } from "../peer/index.ts";
import type { Mirror } from "./mirror.ts";
import { peerStatus } from "./peer-status.ts";
import { RequestLog } from "./request-log.ts";
import { createMirrorStatus } from "./status.ts";

export interface MirrorServerOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  mirror: Mirror;
  log: (entry: Record<string, unknown>) => void;
  /** The status page's peers: the node that shares blobs and the registry it counts in. */
  peers?: { node: PeerNode; metrics: Metrics };
}

export interface RunningMirror {
  /** host:port actually bound (port 0 picks a free one). */
  readonly address: string;
  readonly url: string;
  /** Stops accepting, lets in-flight responses finish (up to `graceMs`), then closes the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startMirrorServer(options: MirrorServerOptions): Promise<RunningMirror> {
  const active = new Set<ServerResponse>();
  const requests = new RequestLog();
  const peers = options.peers;
  const status = createMirrorStatus(
    options.mirror,
    options.log,
    requests,
    peers === undefined ? undefined : () => peerStatus(peers.node, peers.metrics),
  );
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    active.add(res);
    res.on("close", () => {
      active.delete(res);
      options.log({
        level: "info",
        msg: "request",
        method: req.method,
        url: req.url,
        status: res.statusCode,
        complete: res.writableFinished,
        ms: Math.round(performance.now() - started),
      });
    });
    if (status.handle(req, res)) return;
    void requests.track(req, res, () => options.mirror.handle(req, res));
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : createHttpServer(handler);
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 60_000;
  server.requestTimeout = 0; // blob responses may take long; idle sockets are closed by keepAliveTimeout
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const address = `${host}:${addr.port}`;
  return {
    address,
    url: `${options.tls ? "https" : "http"}://${address}`,
    close: async (graceMs = 30_000) => {
      status.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while (active.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        server.closeIdleConnections();
      }
      server.closeAllConnections();
      await closed;
    },
  };
}
