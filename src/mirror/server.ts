import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
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
  /** Client connections open at once; more are closed on arrival. Default 1024. */
  maxConnections?: number;
  /** A connection without a request in progress, or whose request head is still arriving, is closed after this. Default 30 s. */
  idleTimeoutMs?: number;
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
  /** Connections with a response in progress: never idle, however long the upstream takes. */
  const busy = new Set<Socket>();
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
    busy.add(req.socket);
    res.on("close", () => {
      active.delete(res);
      busy.delete(req.socket);
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
  const idleMs = options.idleTimeoutMs ?? 30_000;
  // Expired heads are looked for this often (Node's default, 30 s, would outlive a short timeout).
  const timing = { connectionsCheckingInterval: Math.min(idleMs, 5_000) };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, ...timing }, handler)
    : createHttpServer(timing, handler);
  server.maxConnections = options.maxConnections ?? 1024;
  server.keepAliveTimeout = idleMs;
  // A client dribbling its request head (slowloris) or sending nothing is cut off here.
  server.headersTimeout = idleMs;
  server.requestTimeout = 0; // blob responses may take long; idle sockets are closed by keepAliveTimeout
  // Any connection quiet this long without a response in progress goes too, whatever Node's request timers cover.
  server.timeout = idleMs;
  server.on("timeout", (socket: Socket) => {
    if (!busy.has(socket)) socket.destroy();
  });
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
