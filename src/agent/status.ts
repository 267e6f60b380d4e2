/**
 * The agent's HTTP routes: /healthz, /readyz, /status, /metrics, and the webhook receiver
 * (POST /webhooks/KIND, one of WEBHOOK_KINDS). Webhooks are answered as soon as the
 * body is read and judged (webhooks.ts); pulls happen later, in the queue.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { isFerryError } from "../observe/index.ts";
import { formatReference } from "../reference/index.ts";
import type { DiskPressure } from "../store/index.ts";
import { redactSecrets, type StatusPage } from "../web/index.ts";
import type { AgentState } from "./state.ts";
import type { AgentMetrics } from "./metrics.ts";
import {
  decideWebhook,
  MAX_WEBHOOK_BODY_BYTES,
  type PushedImage,
  WEBHOOK_KINDS,
  type WebhookKind,
  type WebhookPolicy,
} from "./webhooks.ts";

export interface AgentRoutesOptions {
  readonly node: string;
  readonly state: AgentState;
  readonly metrics: AgentMetrics;
  readonly queueDepth: () => number;
  /** The webhook policy now; undefined when no secret is configured (webhooks are off). */
  readonly webhooks: () => WebhookPolicy | undefined;
  readonly onPush: (images: readonly PushedImage[], kind: WebhookKind) => void;
  /** More sections of /status: list, queue, schedule, policy. */
  readonly details: () => Record<string, unknown>;
  /** Called before /metrics renders (e.g. to measure the store). */
  readonly refreshMetrics?: () => Promise<void>;
  /** Adds to the document before it is served (Kubernetes mode: the fleet, images × nodes). */
  readonly extend?: ((doc: Record<string, unknown>) => Record<string, unknown>) | undefined;
  /** ferry's store's disk condition, reported by /readyz, /status and /metrics. */
  readonly diskPressure?: DiskPressure | undefined;
  /** The status page (`/`, its assets, `/events`), rendering statusDocument. */
  readonly page?: StatusPage;
  readonly log: (entry: Record<string, unknown>) => void;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function createAgentRoutes(options: AgentRoutesOptions): Handler {
  return (req, res) => {
    route(options, req, res).catch((err: unknown) => {
      // Work refused because the agent is stopping: the sender should retry (the next start).
      const stopping = isFerryError(err, "FERRY_INTERRUPTED");
      if (!stopping)
        options.log({ level: "error", msg: "request failed", url: req.url, error: String(err) });
      if (res.headersSent) res.destroy();
      else
        send(res, stopping ? 503 : 500, { error: stopping ? "shutting down" : "internal error" });
    });
  };
}

async function route(o: AgentRoutesOptions, req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? "/", "http://agent");
  const hook = /^\/webhooks\/([a-z]+)\/?$/.exec(url.pathname);
  if (hook !== null) return webhook(o, hook[1] as string, url, req, res);
  if (req.method !== "GET" && req.method !== "HEAD") {
    return send(res, 405, { error: `${req.method} is not allowed here` }, { allow: "GET, HEAD" });
  }
  switch (url.pathname) {
    case "/healthz":
      return send(res, 200, { ok: true });
    case "/readyz": {
      const readiness = o.state.readiness();
      const disk = await o.diskPressure?.check();
      return send(res, readiness.ready ? 200 : 503, { ...readiness, ...(disk ? { disk } : {}) });
    }
    case "/status":
      await o.diskPressure?.check();
      return send(res, 200, statusDocument(o));
    case "/metrics": {
      await o.refreshMetrics?.();
      if (o.diskPressure !== undefined)
        o.metrics.storeDiskFull((await o.diskPressure.check()).full);
      o.metrics.queueDepth(o.queueDepth());
      o.metrics.ready(o.state.readiness().ready);
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      return res.end(req.method === "HEAD" ? undefined : o.metrics.render());
    }
    default:
      if (o.page?.handle(req, res)) return;
      return send(res, 404, {
        error: `no route ${url.pathname}`,
        routes: ["/", "/healthz", "/readyz", "/status", "/metrics", "POST /webhooks/KIND"],
      });
  }
}

/**
 * The one JSON shape /status serves (and the status page renders), with anything that looks
 * like a secret redacted as on the mirror's: whoever reaches the listener may read it.
 */
export function statusDocument(o: AgentRoutesOptions): Record<string, unknown> {
  const readiness = o.state.readiness();
  const doc: Record<string, unknown> = {
    node: o.node,
    time: new Date().toISOString(),
    ready: readiness.ready,
    missing: readiness.missing,
    targets: o.state.targets,
    images: o.state.images(),
    ...(o.diskPressure === undefined ? {} : { disk: o.diskPressure.condition() }),
    ...o.details(),
  };
  return redactSecrets(o.extend === undefined ? doc : o.extend(doc)) as Record<string, unknown>;
}

async function webhook(
  o: AgentRoutesOptions,
  name: string,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const kind = WEBHOOK_KINDS.find((k) => k === name);
  const refuse = (status: number, reason: string, extra: Record<string, unknown> = {}) => {
    o.metrics.webhook(kind ?? "unknown", status);
    o.log({
      level: "warn",
      msg: "webhook refused",
      source: name,
      status,
      reason,
      ...extra,
      from: req.socket.remoteAddress,
    });
    send(res, status, { error: reason, ...extra }, status === 413 ? { connection: "close" } : {});
  };
  if (kind === undefined)
    return refuse(404, `no webhook format "${name}" (${WEBHOOK_KINDS.join(", ")})`);
  if (req.method !== "POST") return refuse(405, "webhooks are POSTed");
  const policy = o.webhooks();
  if (policy === undefined) return refuse(404, "webhooks are off: the agent has no webhook secret");
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > MAX_WEBHOOK_BODY_BYTES)
    return refuse(413, `body over ${MAX_WEBHOOK_BODY_BYTES} bytes`);
  const body = await readBody(req, MAX_WEBHOOK_BODY_BYTES);
  if (body === undefined) return refuse(413, `body over ${MAX_WEBHOOK_BODY_BYTES} bytes`);
  const decision = decideWebhook(
    { kind, headers: req.headers, query: url.searchParams, body },
    policy,
  );
  if (decision.status !== 202) {
    return refuse(
      decision.status,
      decision.reason,
      "refused" in decision ? { refused: decision.refused } : {},
    );
  }
  if (decision.refused.length > 0) {
    o.log({
      level: "warn",
      msg: "webhook refused",
      source: kind,
      status: 202,
      reason: "not on the allow-list",
      refused: decision.refused,
    });
  }
  o.onPush(decision.accepted, kind);
  o.metrics.webhook(kind, 202);
  const accepted = decision.accepted.map((i) => formatReference(i.ref));
  o.log({
    // Blob uploads and the agent's own pulls are notified too: only news is worth a line.
    level: accepted.length > 0 ? "info" : "debug",
    msg: "webhook",
    source: kind,
    accepted,
    ignored: decision.ignored,
    notes: decision.notes,
  });
  send(res, 202, { accepted, refused: decision.refused, ignored: decision.ignored });
}

/** The body, or undefined once it passes `limit` bytes (the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.pause();
        resolve(undefined);
      } else chunks.push(chunk);
    };
    req.on("data", onData);
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : text);
}
