import type { IncomingHttpHeaders } from "node:http";
import type * as Https from "node:https";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type { AddressGuard } from "./address-guard.ts";
import type { TlsSettings } from "./endpoint.ts";
import { networkError } from "./network-error.ts";
import { idleTimeout } from "./socket.ts";

const AGENT_OPTIONS = {
  keepAlive: true,
  maxSockets: 16,
  maxFreeSockets: 16,
  scheduling: "lifo" as const,
};

/**
 * Keep-alive connection pools for HTTPS, one per TLS setting; one set per process (or
 * worker thread). Plain HTTP (loopback and LAN registries and mirrors) takes a new
 * connection per request instead (blob-reader.ts's requestOnce): there a connection
 * costs less than loading Node's HTTP client, and TLS handshakes are what pooling saves.
 */
export class Agents {
  readonly #https = new Map<TlsSettings | undefined, Https.Agent>();

  /** Created on first use (loading TLS costs start-up that loopback pulls do not need), one per TLS setting. */
  https(tls?: TlsSettings): Https.Agent {
    let agent = this.#https.get(tls);
    if (agent === undefined) {
      agent = new (https().Agent)({ ...AGENT_OPTIONS, ...(tls ?? {}) });
      this.#https.set(tls, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const agent of this.#https.values()) agent.destroy();
  }
}

// Loaded with require() on first use: an ESM `import` of node:https evaluates every export
// of its facade, including lazy ones that pull in Node's bundled undici (~40 ms of start-up).
const requireBuiltin = createRequire(import.meta.url);
let httpsModule: typeof Https | undefined;
export function https(): typeof Https {
  httpsModule ??= requireBuiltin("node:https") as typeof Https;
  return httpsModule;
}

export function createAgents(): Agents {
  return new Agents();
}

let sharedAgents: Agents | undefined;
export function defaultAgents(): Agents {
  sharedAgents ??= createAgents();
  return sharedAgents;
}

export function destroyAgents(agents: Agents): void {
  agents.destroy();
}

/** One HTTPS request on a pooled connection; redirects are the caller's. */
export function sendHttps(
  req: {
    method: string;
    url: string;
    target: URL;
    headers: Record<string, string>;
    body?: string | Buffer | undefined;
    signal?: AbortSignal | undefined;
    tls?: TlsSettings | undefined;
    guard?: AddressGuard | undefined;
    idleTimeoutMs?: number | undefined;
  },
  agents: Agents,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Readable }> {
  return new Promise((resolve, reject) => {
    const headers =
      req.body === undefined
        ? req.headers
        : { ...req.headers, "content-length": String(Buffer.byteLength(req.body)) };
    const options: Https.RequestOptions = {
      method: req.method,
      headers,
      agent: agents.https(req.tls),
      signal: req.signal,
      ...req.guard?.connectOptions(req.target.hostname),
    };
    const request = https().request(req.target, options, (res) => {
      // The idle timeout keeps guarding the body after the headers arrive.
      res.socket.setTimeout(timeoutMs);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    const timeoutMs = idleTimeout(request, req.idleTimeoutMs, (err) => request.destroy(err));
    request.on("error", (err) => reject(networkError(err, req.url)));
    request.end(req.body);
  });
}
