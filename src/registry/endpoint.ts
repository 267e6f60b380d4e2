import { apiHost, isLoopbackHost } from "../reference/index.ts";

/** TLS settings for one registry host (from ferry's config file). */
export interface TlsSettings {
  /** Extra CA certificates (PEM), trusted besides the system's. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** false: accept any certificate (the `skipVerify` setting). */
  rejectUnauthorized?: boolean;
}

/** Per-registry settings the client needs; `config/` produces them from the config file. */
export interface HostSettings {
  /**
   * Where the registry's API really is, replacing the address derived from its
   * name (a mirror uses this to stand a local registry in for docker.io).
   */
  endpoint?: string;
  /** With `endpoint`: the registry it stands in for, sent as `?ns=` (a mirror serving several). */
  namespace?: string;
  /** Base URLs tried in order before the registry itself. */
  mirrors?: string[];
  plainHttp?: boolean;
  tls?: TlsSettings;
  /** The deadline of each manifest and blob from this registry (see deadline.ts). */
  timeoutMs?: number;
}

/** One place a repository can be read from: a mirror, or the registry itself. */
export interface Endpoint {
  /** e.g. http://127.0.0.1:5000 or https://registry-1.docker.io */
  readonly base: string;
  /** host[:port] of `base`: what credentials and auth challenges are keyed by. */
  readonly host: string;
  readonly mirror: boolean;
  /** The registry a mirror stands in for: sent as `?ns=` (containerd's convention; others ignore it). */
  readonly namespace: string | undefined;
  readonly tls: TlsSettings | undefined;
}

export function upstreamEndpoint(domain: string, settings: HostSettings | undefined): Endpoint {
  if (settings?.endpoint !== undefined) {
    const u = new URL(settings.endpoint);
    return {
      base: `${u.protocol}//${u.host}`,
      host: u.host,
      mirror: false,
      namespace: settings.namespace,
      tls: settings.tls,
    };
  }
  const host = apiHost(domain);
  // Loopback registries speak plain HTTP unless configured otherwise (as Docker allows).
  const scheme = (settings?.plainHttp ?? isLoopbackHost(host)) ? "http" : "https";
  return {
    base: `${scheme}://${host}`,
    host,
    mirror: false,
    namespace: undefined,
    tls: settings?.tls,
  };
}

export function mirrorEndpoint(
  url: string,
  domain: string,
  settingsOf: (host: string) => HostSettings | undefined,
): Endpoint {
  const u = new URL(url);
  const base = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "").replace(/\/v2$/, "")}`;
  return { base, host: u.host, mirror: true, namespace: domain, tls: settingsOf(u.host)?.tls };
}

/** An API path (`paths.ts`) on an endpoint, with `?ns=` for mirrors. */
export function endpointUrl(endpoint: Endpoint, path: string, query?: URLSearchParams): string {
  const q = new URLSearchParams(query);
  if (endpoint.namespace !== undefined) q.set("ns", endpoint.namespace);
  const qs = q.toString();
  return `${endpoint.base}${path}${qs === "" ? "" : `?${qs}`}`;
}
