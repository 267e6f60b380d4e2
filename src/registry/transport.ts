import type { IncomingHttpHeaders } from "node:http";
import type * as Https from "node:https";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import { FerryError } from "../observe/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import { requestOnce } from "./blob-reader.ts";
import { defaultIdleTimeoutMs } from "./deadline.ts";
import type { TlsSettings } from "./endpoint.ts";

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

export interface TransportOptions {
  agents?: Agents;
  maxRedirects?: number;
  userAgent?: string | undefined;
  /** Socket idle timeout (no bytes either way): connect, headers and body stalls alike. */
  idleTimeoutMs?: number;
}

// Loaded with require() on first use: an ESM `import` of node:https evaluates every export
// of its facade, including lazy ones that pull in Node's bundled undici (~40 ms of start-up).
const requireBuiltin = createRequire(import.meta.url);
let httpsModule: typeof Https | undefined;
function https(): typeof Https {
  httpsModule ??= requireBuiltin("node:https") as typeof Https;
  return httpsModule;
}

export const USER_AGENT = "ferry/0.1";

export function createAgents(): Agents {
  return new Agents();
}

let sharedAgents: Agents | undefined;
function defaultAgents(): Agents {
  sharedAgents ??= createAgents();
  return sharedAgents;
}

export function destroyAgents(agents: Agents): void {
  agents.destroy();
}

export function header(res: { headers: IncomingHttpHeaders }, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a whole (small) body as text, refusing more than `limit` bytes. */
export async function readText(res: HttpResponse, limit = 4 * 1024 * 1024): Promise<string> {
  return (await readBytes(res, limit)).toString("utf8");
}

/** `onBytes` hears the bytes read so far as each piece arrives (a deadline counts them as progress). */
export async function readBytes(
  res: HttpResponse,
  limit: number,
  onBytes: (size: number) => void = () => {},
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    onBytes(size);
    if (size > limit) {
      res.body.destroy();
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `response from ${redact(res.url)} is larger than ${limit} bytes`,
        {
          hint: "no registry response of this kind is that large; check the registry address, or report it to the registry's operator",
          fields: { limit },
        },
      );
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
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

const REDIRECT_HINT =
  "the registry (or the storage it redirects to) is misconfigured; report it to the registry's operator";

/**
 * Where a redirect from `url` to `location` leads, checked: at most `max` hops from
 * `first` (the URL asked for), and only to http(s), so a registry cannot point ferry
 * at a local file or another scheme.
 */
export function redirectTarget(
  first: string,
  url: string,
  location: string,
  hop: number,
  max: number,
): URL {
  const host = safeHost(url);
  if (hop >= max) {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${host} redirected ${redact(first)} more than ${max} times (a redirect loop)`,
      { hint: REDIRECT_HINT, fields: { host, url: redact(first), maxRedirects: max } },
    );
  }
  let next: URL;
  try {
    next = new URL(location, url);
  } catch (cause) {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${host} redirected ${redact(url)} to an invalid URL`,
      {
        hint: REDIRECT_HINT,
        fields: { host },
        cause,
      },
    );
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${host} redirected ${redact(url)} to a ${next.protocol} URL; only http and https redirects are followed`,
      { hint: REDIRECT_HINT, fields: { host, scheme: next.protocol } },
    );
  }
  return next;
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function dropCredentials(h: Record<string, string>): Record<string, string> {
  const { authorization: _a, cookie: _c, ...rest } = h;
  return rest;
}

/** The URL without query string, which may carry signed tokens. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "EPROTO",
]);

/** Maps a low-level network failure to a FerryError that names the host and says what to do. */
export function networkError(cause: unknown, url: string): FerryError {
  if (cause instanceof FerryError) return cause;
  const host = safeHost(url);
  const code = (cause as { code?: unknown } | null)?.code;
  const errno = typeof code === "string" ? code : undefined;
  const fields = { host, errno };
  if ((cause as { name?: string } | null)?.name === "AbortError") {
    return new FerryError("FERRY_INTERRUPTED", `request to ${host} was cancelled`, {
      cause,
      fields,
    });
  }
  if (errno === "ENOTFOUND" || errno === "EAI_AGAIN") {
    return new FerryError(
      "FERRY_UNREACHABLE",
      `cannot resolve registry host ${host} (DNS lookup failed)`,
      {
        hint: "check the registry name for typos and that this machine's DNS works",
        cause,
        fields,
      },
    );
  }
  if (errno === "ECONNREFUSED") {
    return new FerryError(
      "FERRY_UNREACHABLE",
      `cannot connect to registry ${host}: connection refused`,
      {
        hint: "check that the registry is running and listening on that address and port",
        cause,
        fields,
      },
    );
  }
  if (
    errno !== undefined &&
    (TLS_CODES.has(errno) || errno.startsWith("ERR_TLS") || errno.startsWith("ERR_SSL"))
  ) {
    return new FerryError("FERRY_TLS", `TLS connection to ${host} failed (${errno})`, {
      hint: "if the registry uses a private CA, set registries.HOST.ca in ferry's config file; for a registry without TLS, set registries.HOST.plainHttp: true (skipVerify: true disables verification)",
      cause,
      fields,
    });
  }
  if (errno === "ETIMEDOUT") {
    return new FerryError(
      "FERRY_TIMEOUT",
      `registry ${host} stopped answering (no data for too long)`,
      {
        hint: "the registry or the network is slow or down; retry later",
        cause,
        fields,
      },
    );
  }
  return new FerryError(
    "FERRY_UNREACHABLE",
    `connection to registry ${host} failed (${errno ?? String(cause)})`,
    {
      hint: "check the network path to the registry and retry",
      cause,
      fields,
    },
  );
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
