import type { IncomingHttpHeaders } from "node:http";
import type * as Https from "node:https";
import type { Readable } from "node:stream";
import { FerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import { requestOnce } from "./blob-reader.ts";
import { defaultIdleTimeoutMs } from "./deadline.ts";
import type { TlsSettings } from "./endpoint.ts";
import { header, lowerKeys, USER_AGENT } from "./headers.ts";
import { type Agents, defaultAgents, https } from "./https-pool.ts";
import { networkError, redact } from "./network-error.ts";
import { dropCredentials, redirectTarget } from "./redirect.ts";

export { readBytes, readText } from "./body.ts";
export { header, USER_AGENT } from "./headers.ts";
export { Agents, createAgents, destroyAgents } from "./https-pool.ts";
export { networkError, redact } from "./network-error.ts";
export { redirectTarget } from "./redirect.ts";

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

/**
 * Sends one request, following redirects itself so that `Authorization`
 * never travels to an origin other than the one it was meant for.
 */
export async function send(
  req: HttpRequest,
  options: TransportOptions = {},
): Promise<HttpResponse> {
  const maxRedirects = options.maxRedirects ?? 5;
  const agents = options.agents ?? defaultAgents();
  let url = req.url;
  let headers: Record<string, string> = {
    "user-agent": options.userAgent ?? USER_AGENT,
    ...lowerKeys(req.headers ?? {}),
  };
  let method = req.method;
  let body = req.body;
  let tls = req.tls;
  for (let hop = 0; ; hop++) {
    const res = await once(
      { method, url, headers, body, signal: req.signal, tls, guard: req.guard },
      agents,
      options.idleTimeoutMs ?? defaultIdleTimeoutMs(),
    );
    const location = header(res, "location");
    const status = res.status;
    if (status >= 300 && status < 400 && status !== 304 && location) {
      res.body.resume();
      const next = redirectTarget(req.url, url, location, hop, maxRedirects);
      if (next.origin !== new URL(url).origin) {
        // Credentials (and a client certificate) belong to the registry, not to where it redirects.
        headers = dropCredentials(headers);
        tls = undefined;
      }
      if (status === 303) {
        method = "GET";
        body = undefined;
      }
      url = next.toString();
      continue;
    }
    return { ...res, url };
  }
}

function once(
  req: {
    method: string;
    url: string;
    headers: Record<string, string>;
    body: string | Buffer | undefined;
    signal: AbortSignal | undefined;
    tls: TlsSettings | undefined;
    guard: AddressGuard | undefined;
  },
  agents: Agents,
  idleTimeoutMs: number,
): Promise<Omit<HttpResponse, "url">> {
  let target: URL;
  try {
    target = new URL(req.url);
  } catch (cause) {
    return Promise.reject(
      new FerryError("FERRY_INVALID_ARGUMENT", `invalid URL ${req.url}`, { cause }),
    );
  }
  if (target.protocol === "http:") return requestOnce({ ...req, idleTimeoutMs });
  if (target.protocol !== "https:") {
    return Promise.reject(
      new FerryError("FERRY_INVALID_ARGUMENT", `unsupported URL scheme in ${redact(req.url)}`),
    );
  }
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
      ...req.guard?.connectOptions(target.hostname),
    };
    const request = https().request(target, options, (res) => {
      // The idle timeout keeps guarding the body after the headers arrive.
      res.socket.setTimeout(idleTimeoutMs);
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res });
    });
    request.setTimeout(idleTimeoutMs, () => {
      request.destroy(Object.assign(new Error("socket idle timeout"), { code: "ETIMEDOUT" }));
    });
    request.on("error", (err) => reject(networkError(err, req.url)));
    request.end(req.body);
  });
}
