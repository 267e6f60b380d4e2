import { digestOf, isDigest } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import { MANIFEST_ACCEPT } from "../oci/index.ts";
import { apiHost, isLoopbackHost } from "../reference/index.ts";
import { anonymous, Authenticator, type CredentialSource } from "./auth.ts";
import { type Challenge, parseChallenges } from "./challenge.ts";
import { errorFromResponse, type RequestContext } from "./errors.ts";
import { DEFAULT_RETRY, type RetryPolicy, withRetry } from "./retry.ts";
import {
  type Agents,
  createAgents,
  destroyAgents,
  header,
  type HttpRequest,
  type HttpResponse,
  readText,
  send,
} from "./transport.ts";

/** A repository on a registry: `domain` as in a normalized reference (e.g. docker.io), `path` the repository. */
export interface Repository {
  readonly domain: string;
  readonly path: string;
}

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
}

/** What a transfer worker needs to GET a blob itself: the URL and the headers (auth included). */
export interface BlobLocation {
  readonly url: string;
  readonly headers: Record<string, string>;
}

export interface RegistryClientOptions {
  credentials?: CredentialSource;
  retry?: RetryPolicy;
  agents?: Agents;
  /** Hosts (host:port) that speak plain HTTP. Loopback registries always may, as Docker allows. */
  plainHttp?: (host: string) => boolean;
  userAgent?: string;
}

/** Manifests larger than this are refused (containerd uses the same bound) so a server cannot exhaust memory. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The Distribution API client: ping, auth, manifests, blobs, tags. One per process; safe to share. */
export class RegistryClient {
  readonly #agents: Agents;
  readonly #retry: RetryPolicy;
  readonly #plainHttp: (host: string) => boolean;
  readonly #userAgent: string | undefined;
  readonly #auth: Authenticator;
  readonly #challenges = new Map<string, Promise<Challenge | undefined>>();

  constructor(options: RegistryClientOptions = {}) {
    this.#agents = options.agents ?? createAgents();
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#plainHttp = options.plainHttp ?? (() => false);
    this.#userAgent = options.userAgent;
    this.#auth = new Authenticator({
      credentials: options.credentials ?? anonymous,
      send: (req) => withRetry(() => this.#send(req), this.#retry, req.signal),
    });
  }

  /** Base URL of a registry's API, e.g. http://127.0.0.1:5000 or https://registry-1.docker.io. */
  baseUrl(domain: string): string {
    const host = apiHost(domain);
    const scheme = isLoopbackHost(host) || this.#plainHttp(host) ? "http" : "https";
    return `${scheme}://${host}`;
  }

  async close(): Promise<void> {
    destroyAgents(this.#agents);
  }

  /** GET /v2/: learns (once per host) whether and how the registry wants authentication. */
  ping(domain: string, signal?: AbortSignal): Promise<Challenge | undefined> {
    const host = apiHost(domain);
    let known = this.#challenges.get(host);
    if (known === undefined) {
      known = this.#ping(domain, signal);
      this.#challenges.set(host, known);
      known.catch(() => this.#challenges.delete(host));
    }
    return known;
  }

  async #ping(domain: string, signal?: AbortSignal): Promise<Challenge | undefined> {
    const url = `${this.baseUrl(domain)}/v2/`;
    const res = await withRetry(
      () => this.#send({ method: "GET", url, signal }),
      this.#retry,
      signal,
    );
    res.body.resume();
    if (res.status === 200) return undefined;
    if (res.status === 401) return pickChallenge(header(res, "www-authenticate"));
    throw await errorFromResponse(res, { host: apiHost(domain), repository: "", what: "ping" });
  }

  async fetchManifest(
    repo: Repository,
    reference: string,
    signal?: AbortSignal,
  ): Promise<FetchedManifest> {
    const ctx = context(repo, "manifest", { reference });
    const res = await this.#authorized(repo, ctx, signal, (headers) => ({
      method: "GET",
      url: `${this.baseUrl(repo.domain)}/v2/${repo.path}/manifests/${reference}`,
      headers: { ...headers, accept: MANIFEST_ACCEPT.join(", ") },
      signal,
    }));
    if (res.status !== 200) throw await errorFromResponse(res, ctx);
    const declaredLength = Number(header(res, "content-length") ?? "0");
    if (declaredLength > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw tooLarge(repo, reference);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_MANIFEST_BYTES) {
        res.body.destroy();
        throw tooLarge(repo, reference);
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const digest = digestOf(bytes);
    const claimed = header(res, "docker-content-digest");
    if (isDigest(reference) && reference !== digest) {
      throw manifestMismatch(repo, reference, digest);
    }
    if (claimed?.startsWith("sha256:") && claimed !== digest) {
      throw manifestMismatch(repo, claimed, digest);
    }
    const contentType = header(res, "content-type")?.split(";")[0]?.trim() ?? "";
    return { bytes, mediaType: contentType, digest };
  }

  /** Where and how to GET a blob; auth resolved now, so a worker thread can fetch it alone. */
  async blobLocation(
    repo: Repository,
    digest: string,
    signal?: AbortSignal,
  ): Promise<BlobLocation> {
    const headers = await this.#authHeaders(repo, signal);
    return { url: `${this.baseUrl(repo.domain)}/v2/${repo.path}/blobs/${digest}`, headers };
  }

  /** Drop cached auth for a repository after a transfer met 401 (expired token). */
  invalidateAuth(repo: Repository): void {
    this.#auth.invalidate(apiHost(repo.domain), pullScope(repo));
  }

  /** GET a blob (optionally from `offset`); the response is 200 or 206, anything else throws. */
  async openBlob(
    repo: Repository,
    digest: string,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<HttpResponse> {
    const ctx = context(repo, "blob", { digest });
    const offset = options.offset ?? 0;
    const res = await this.#authorized(repo, ctx, options.signal, (headers) => ({
      method: "GET",
      url: `${this.baseUrl(repo.domain)}/v2/${repo.path}/blobs/${digest}`,
      headers: offset > 0 ? { ...headers, range: `bytes=${offset}-` } : headers,
      signal: options.signal,
    }));
    if (res.status === 200 || res.status === 206) return res;
    throw await errorFromResponse(res, ctx);
  }

  /** Tags of a repository (first page of up to `n`), for hints and `tags/list`. */
  async listTags(
    repo: Repository,
    options: { n?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const ctx = context(repo, "tags", {});
    const query = options.n === undefined ? "" : `?n=${options.n}`;
    const res = await this.#authorized(repo, ctx, options.signal, (headers) => ({
      method: "GET",
      url: `${this.baseUrl(repo.domain)}/v2/${repo.path}/tags/list${query}`,
      headers,
      signal: options.signal,
    }));
    if (res.status !== 200) throw await errorFromResponse(res, ctx);
    const body = JSON.parse(await readText(res)) as { tags?: unknown };
    return Array.isArray(body.tags)
      ? body.tags.filter((t): t is string => typeof t === "string")
      : [];
  }

  async #authHeaders(repo: Repository, signal?: AbortSignal): Promise<Record<string, string>> {
    const challenge = await this.ping(repo.domain, signal);
    const value = await this.#auth.header(apiHost(repo.domain), challenge, pullScope(repo));
    return value === undefined ? {} : { authorization: value };
  }

  /** Sends with auth; on 401 renews the token once (it may have expired or the challenge changed). */
  async #authorized(
    repo: Repository,
    ctx: RequestContext,
    signal: AbortSignal | undefined,
    build: (headers: Record<string, string>) => HttpRequest,
  ): Promise<HttpResponse> {
    const host = apiHost(repo.domain);
    const scope = pullScope(repo);
    let res = await withRetry(
      async () => this.#send(build(await this.#authHeaders(repo, signal))),
      this.#retry,
      signal,
    );
    if (res.status !== 401) return res;
    const challenge = pickChallenge(header(res, "www-authenticate"));
    res.body.resume();
    if (challenge === undefined) throw await errorFromResponse(res, ctx);
    this.#challenges.set(host, Promise.resolve(challenge));
    this.#auth.invalidate(host, scope);
    const value = await this.#auth.header(host, challenge, scope);
    res = await withRetry(
      () => this.#send(build(value === undefined ? {} : { authorization: value })),
      this.#retry,
      signal,
    );
    if (res.status === 401 && (await this.#auth.hasCredentials(host))) {
      res.body.resume();
      throw new FerryError(
        "FERRY_AUTH_REJECTED",
        `registry ${host} did not accept the credentials for ${repo.path}`,
        {
          hint: `log in again with \`ferry login ${host}\``,
          fields: { host, repository: repo.path },
        },
      );
    }
    return res;
  }

  #send(req: HttpRequest): Promise<HttpResponse> {
    return send(req, { agents: this.#agents, userAgent: this.#userAgent });
  }
}

export function pullScope(repo: Repository): string {
  return `repository:${repo.path}:pull`;
}

function pickChallenge(value: string | undefined): Challenge | undefined {
  if (value === undefined) return undefined;
  const all = parseChallenges(value);
  return all.find((c) => c.scheme === "bearer") ?? all.find((c) => c.scheme === "basic") ?? all[0];
}

function context(
  repo: Repository,
  what: RequestContext["what"],
  extra: { reference?: string; digest?: string },
): RequestContext {
  return { host: repo.domain, repository: repo.path, what, ...extra };
}

function tooLarge(repo: Repository, reference: string): FerryError {
  return new FerryError(
    "FERRY_INVALID_MANIFEST",
    `manifest ${repo.domain}/${repo.path}@${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`,
    {
      hint: "this is not a normal image manifest; check the reference",
    },
  );
}

function manifestMismatch(repo: Repository, expected: string, actual: string): FerryError {
  return new FerryError(
    "FERRY_DIGEST_MISMATCH",
    `manifest from ${repo.domain}/${repo.path} does not match its digest ${expected} (got ${actual})`,
    {
      hint: "the registry or something between it and you served a different manifest than it announced; nothing was stored",
      fields: { expected, actual },
    },
  );
}
