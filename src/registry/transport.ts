import type { Readable } from "node:stream";
import { Agent, type Dispatcher, request } from "undici";
import { FerryError } from "../observe/index.ts";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer> };
  /** The URL that finally answered, after redirects. */
  url: string;
}

export interface TransportOptions {
  dispatcher?: Dispatcher;
  maxRedirects?: number;
  userAgent?: string;
}

export const USER_AGENT = "ferry/0.1";

/** A pooled keep-alive agent with bounded timeouts; one per process (or worker). */
export function createAgent(): Agent {
  return new Agent({
    connections: 16,
    keepAliveTimeout: 30_000,
    connectTimeout: 10_000,
    headersTimeout: 30_000,
    bodyTimeout: 60_000,
  });
}

export function header(
  res: { headers: HttpResponse["headers"] },
  name: string,
): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
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
  let url = req.url;
  let headers: Record<string, string> = {
    "user-agent": options.userAgent ?? USER_AGENT,
    ...lowerKeys(req.headers ?? {}),
  };
  let method = req.method;
  for (let hop = 0; ; hop++) {
    const res = await request(url, {
      method,
      headers,
      body: method === "GET" || method === "HEAD" ? undefined : req.body,
      signal: req.signal,
      dispatcher: options.dispatcher,
    }).catch((cause: unknown) => {
      throw networkError(cause, url);
    });
    const location = header(res, "location");
    if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304 && location) {
      res.body.resume();
      if (hop >= maxRedirects) {
        throw new FerryError("FERRY_REGISTRY_ERROR", `too many redirects fetching ${redact(url)}`);
      }
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) {
        headers = dropCredentials(headers);
      }
      if (res.statusCode === 303) method = "GET";
      url = next.toString();
      continue;
    }
    return {
      status: res.statusCode,
      headers: res.headers as HttpResponse["headers"],
      body: res.body as unknown as HttpResponse["body"],
      url,
    };
  }
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

function causeCode(cause: unknown): string | undefined {
  let c: unknown = cause;
  for (let depth = 0; depth < 4 && c !== undefined && c !== null; depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === "string" && code !== "UND_ERR_SOCKET" && code !== "UND_ERR_CONNECT")
      return code;
    c = (c as { cause?: unknown }).cause;
  }
  const top = (cause as { code?: unknown } | null)?.code;
  return typeof top === "string" ? top : undefined;
}

/** Maps a low-level network failure to a FerryError that names the host and says what to do. */
export function networkError(cause: unknown, url: string): FerryError {
  if (cause instanceof FerryError) return cause;
  const host = safeHost(url);
  const code = causeCode(cause);
  const fields = { host, errno: code };
  if ((cause as { name?: string } | null)?.name === "AbortError") {
    return new FerryError("FERRY_INTERRUPTED", `request to ${host} was cancelled`, {
      cause,
      fields,
    });
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
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
  if (code === "ECONNREFUSED") {
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
    code !== undefined &&
    (TLS_CODES.has(code) || code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL"))
  ) {
    return new FerryError("FERRY_TLS", `TLS handshake with ${host} failed (${code})`, {
      hint: "if the registry uses a private CA, add its certificate to ferry's registry configuration; for a registry without TLS, mark it insecure",
      cause,
      fields,
    });
  }
  if (
    code === "UND_ERR_CONNECT_TIMEOUT" ||
    code === "UND_ERR_HEADERS_TIMEOUT" ||
    code === "UND_ERR_BODY_TIMEOUT" ||
    code === "ETIMEDOUT"
  ) {
    return new FerryError("FERRY_TIMEOUT", `registry ${host} did not answer in time (${code})`, {
      hint: "the registry or the network is slow or down; retry later",
      cause,
      fields,
    });
  }
  return new FerryError(
    "FERRY_UNREACHABLE",
    `connection to registry ${host} failed (${code ?? String(cause)})`,
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
