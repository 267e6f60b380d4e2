import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { AddressGuard } from "./address-guard.ts";
import { requestOnce } from "./blob-reader.ts";
import type { TlsSettings } from "./endpoint.ts";
import { header, lowerKeys, USER_AGENT } from "./headers.ts";
import { type Agents, defaultAgents, sendHttps } from "./https-pool.ts";
import { followRedirects, type Redirection, redirection } from "./redirect.ts";
import { parseTarget } from "./request-head.ts";

// The transport's surface, one import for its callers: the pieces live in the HTTP/1 layer's files.
export { readBytes, readText } from "./body.ts";
export { header } from "./headers.ts";
export { Agents, createAgents, destroyAgents } from "./https-pool.ts";
export { networkError, redact } from "./network-error.ts";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  signal?: AbortSignal | undefined;
  /** TLS settings of the host (extra CA, client certificate, skip verification). */
  tls?: TlsSettings | undefined;
  /** Where connections may go (redirects included); unset: anywhere. */
  guard?: AddressGuard | undefined;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** The URL that finally answered, after redirects. */
  url: string;
}

export interface TransportOptions {
  agents?: Agents;
  maxRedirects?: number;
  userAgent?: string | undefined;
  /** Socket idle timeout (no bytes either way): connect, headers and body stalls alike. */
  idleTimeoutMs?: number;
}

/** One registry request after the policies: headers lower-cased, the user agent set. */
type Hop = HttpRequest & { headers: Record<string, string> };

/**
 * Sends one request over the HTTP/1 layer (a bare socket for plain HTTP, the `node:https`
 * pool for HTTPS, design note 3), following redirects with redirect.ts's policy, so that
 * `Authorization` never travels to an origin other than the one it was meant for.
 */
export function send(req: HttpRequest, options: TransportOptions = {}): Promise<HttpResponse> {
  const agents = options.agents ?? defaultAgents();
  const follow = followRedirects(
    (hop: Hop) => sendOnce(hop, agents, options.idleTimeoutMs),
    redirected,
    options.maxRedirects,
  );
  return follow({
    ...req,
    headers: { "user-agent": options.userAgent ?? USER_AGENT, ...lowerKeys(req.headers ?? {}) },
  });
}

/** A response that redirects, its body drained so the connection can be reused. */
function redirected(res: HttpResponse): Redirection | undefined {
  const redirect = redirection(res.status, header(res, "location"));
  if (redirect !== undefined) res.body.resume();
  return redirect;
}

async function sendOnce(
  req: Hop,
  agents: Agents,
  idleTimeoutMs: number | undefined,
): Promise<HttpResponse> {
  const target = parseTarget(req.url);
  const res =
    target.protocol === "http:"
      ? await requestOnce({ ...req, idleTimeoutMs })
      : await sendHttps({ ...req, target, idleTimeoutMs }, agents);
  return { ...res, url: req.url };
}
