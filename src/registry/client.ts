import { FerryError } from "../observe/index.ts";
import { MANIFEST_ACCEPT } from "../oci/index.ts";
import type { AddressGuard } from "./address-guard.ts";
import { anonymous, Authenticator, type CredentialSource } from "./auth.ts";
import { authorizing } from "./authorize.ts";
import { type Challenge, pickChallenge } from "./challenge.ts";
import {
  type Endpoint,
  endpointUrl,
  type HostSettings,
  type TlsSettings,
  upstreamEndpoint,
} from "./endpoint.ts";
import { Deadline } from "./deadline.ts";
import { EndpointChoice } from "./endpoint-choice.ts";
import { errorFromResponse, type RequestContext } from "./errors.ts";
import { type FetchedManifest, type KnownManifest, readManifest } from "./manifest-answer.ts";
import { API_ROOT, blobPath, manifestPath, tagListPath } from "./paths.ts";
import { classifying401 } from "./refusals.ts";
import { renewingOn401 } from "./renew.ts";
import { DEFAULT_RETRY, isTransientError, type RetryPolicy, retrying, sleep } from "./retry.ts";
import { compose, type Send } from "./send.ts";
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

/** How to GET a blob: URL, headers (auth included) and TLS settings of the endpoint. */
export interface BlobLocation {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly tls: TlsSettings | undefined;
  /** Base URL of the mirror serving it, when it is a mirror (so a failure can fall back). */
  readonly mirror: string | undefined;
  /** Where the GET's connections may go (the client's own guard). */
  readonly guard?: AddressGuard | undefined;
}

/** Something the client did that a user should hear about. */
export type RegistryEvent = {
  type: "mirror-fallback";
  mirror: string;
  registry: string;
  reason: string;
};

export interface RegistryClientOptions {
  credentials?: CredentialSource;
  retry?: RetryPolicy;
  /** The deadline of every manifest and blob (`--timeout`), over any host's `timeoutMs` setting. */
  timeoutMs?: number;
  agents?: Agents;
  /** Per-host settings (mirrors, plain HTTP, TLS); loopback hosts always may use plain HTTP, as Docker allows. */
  settings?: (host: string) => HostSettings | undefined;
  userAgent?: string;
  onEvent?: (event: RegistryEvent) => void;
  /** Where this client's connections may go (a server connecting for its clients sets one). */
  guard?: AddressGuard;
}

/**
 * The Distribution API client: ping, auth, manifests, blobs, tags, with
 * configured mirrors tried before the registry (falling back on any failure).
 * One per process; safe to share between concurrent pulls.
 */
export class RegistryClient {
  readonly #agents: Agents;
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number | undefined;
  readonly #settings: (host: string) => HostSettings | undefined;
  readonly #userAgent: string | undefined;
  readonly #auth: Authenticator;
  readonly #onEvent: (event: RegistryEvent) => void;
  readonly #guard: AddressGuard | undefined;
  readonly #challenges = new Map<string, Promise<Challenge | undefined>>();
  readonly #choice: EndpointChoice;

  constructor(options: RegistryClientOptions = {}) {
    this.#agents = options.agents ?? createAgents();
    this.#retry = options.retry ?? DEFAULT_RETRY;
    this.#timeoutMs = options.timeoutMs;
    this.#settings = options.settings ?? (() => undefined);
    this.#userAgent = options.userAgent;
    this.#onEvent = options.onEvent ?? (() => {});
    this.#guard = options.guard;
    this.#choice = new EndpointChoice(this.#settings, (failure) =>
      this.#onEvent({ type: "mirror-fallback", ...failure }),
    );
    this.#auth = new Authenticator({
      credentials: options.credentials ?? anonymous,
      send: (req, deadline = new Deadline(this.#retry)) =>
        retrying(deadline, req.signal)(this.#transport(deadline))(req),
    });
  }

  /** A fresh deadline for one manifest or blob of `domain`: --timeout, else the host's setting, else the default. */
  deadline(domain: string): Deadline {
    const timeoutMs =
      this.#timeoutMs ?? this.#settings(domain)?.timeoutMs ?? this.#retry.maxElapsedMs;
    return new Deadline({ ...this.#retry, maxElapsedMs: timeoutMs });
  }

  /** Where a registry's repositories are read from, in order: live mirrors, then the registry. */
  endpoints(domain: string): Endpoint[] {
    return this.#choice.endpoints(domain);
  }

  /** Base URL of a registry's own API, e.g. http://127.0.0.1:5000 or https://registry-1.docker.io. */
  baseUrl(domain: string): string {
    return upstreamEndpoint(domain, this.#settings(domain)).base;
  }

  async close(): Promise<void> {
    destroyAgents(this.#agents);
  }

  /** GET /v2/: learns (once per host) whether and how an endpoint wants authentication. */
  ping(
    endpoint: Endpoint,
    signal?: AbortSignal,
    deadline?: Deadline,
  ): Promise<Challenge | undefined> {
    let known = this.#challenges.get(endpoint.base);
    if (known === undefined) {
      known = this.#ping(endpoint, signal, deadline ?? new Deadline(this.#retry));
      this.#challenges.set(endpoint.base, known);
      known.catch(() => this.#challenges.delete(endpoint.base));
    }
    return known;
  }

  async #ping(
    endpoint: Endpoint,
    signal: AbortSignal | undefined,
    deadline: Deadline,
  ): Promise<Challenge | undefined> {
    const url = endpointUrl(endpoint, API_ROOT);
    const res = await retrying(deadline, signal)(this.#transport(deadline, endpoint, signal))({
      method: "GET",
      url,
    });
    res.body.resume();
    if (res.status === 200) return undefined;
    if (res.status === 401) return pickChallenge(header(res, "www-authenticate"));
    throw await errorFromResponse(res, { host: endpoint.host, repository: "", what: "ping" });
  }

  /**
   * GETs a manifest and verifies its digest (against the reference when that is a digest,
   * and against Docker-Content-Digest). `known`, when its bytes equal the answer, gives the
   * digest without hashing: a repeat pull then never loads node:crypto (~8 ms of start-up).
   */
  async fetchManifest(
    repo: Repository,
    reference: string,
    signal?: AbortSignal,
    known?: Promise<KnownManifest | undefined>,
  ): Promise<FetchedManifest> {
    // Not awaited on every path (a request that fails first): a rejection is no answer.
    const knownOrNot = known?.catch(() => undefined);
    return this.#choice.firstAnswer(repo.domain, signal, async (endpoint) => {
      // One deadline for everything this manifest takes from this endpoint: ping, retries,
      // and a body that breaks off or stalls (asked for again: manifests are small).
      const deadline = this.deadline(repo.domain);
      for (;;) {
        try {
          return await this.#manifestOnce(endpoint, repo, reference, knownOrNot, deadline, signal);
        } catch (err) {
          if (!isTransientError(err) || signal?.aborted) throw err;
          const delay = deadline.nextDelay();
          if (!deadline.allows(delay)) {
            throw deadline.gaveUp(err, `manifest ${reference} of ${repo.domain}/${repo.path}`);
          }
          await sleep(delay, signal);
        }
      }
    });
  }

  async #manifestOnce(
    endpoint: Endpoint,
    repo: Repository,
    reference: string,
    known: Promise<KnownManifest | undefined> | undefined,
    deadline: Deadline,
    signal: AbortSignal | undefined,
  ): Promise<FetchedManifest> {
    const ctx = context(repo, "manifest", { reference });
    const res = await this.#authorized(endpoint, repo, ctx, signal, deadline, (headers) => ({
      method: "GET",
      url: endpointUrl(endpoint, manifestPath(repo.path, reference)),
      headers: { ...headers, accept: MANIFEST_ACCEPT.join(", ") },
    }));
    if (res.status !== 200) throw await errorFromResponse(res, ctx);
    return readManifest(res, { repo, reference, servedBy: endpoint.host, known, deadline });
  }

  /**
   * Checks this client's credentials for a registry the way `docker login`
   * does: GET /v2/ with Basic, or a token request without scope. Throws
   * FERRY_AUTH_REJECTED when the registry refuses them.
   */
  async verifyLogin(domain: string, signal?: AbortSignal): Promise<void> {
    const endpoint = upstreamEndpoint(domain, this.#settings(domain));
    const challenge = await this.ping(endpoint, signal);
    if (challenge === undefined) return; // the registry asks for no authentication
    const value = await this.#auth.header(endpoint.host, challenge, "");
    if (challenge.scheme !== "basic") return; // the token server accepted the credentials
    const res = await this.#transport(
      this.deadline(domain),
      endpoint,
      signal,
    )({
      method: "GET",
      url: endpointUrl(endpoint, API_ROOT),
      headers: value === undefined ? {} : { authorization: value },
    });
    res.body.resume();
    if (res.status === 401 || res.status === 403) {
      throw new FerryError(
        "FERRY_AUTH_REJECTED",
        `registry ${endpoint.host} rejected the username or password`,
        {
          hint: "check the username and password (or token) and try again",
          fields: { host: endpoint.host },
        },
      );
    }
    if (res.status !== 200)
      throw await errorFromResponse(res, { host: endpoint.host, repository: "", what: "ping" });
  }

  /** Where and how to GET a blob: from the endpoint that served the manifest, auth resolved now. */
  async blobLocation(
    repo: Repository,
    digest: string,
    signal?: AbortSignal,
    deadline?: Deadline,
  ): Promise<BlobLocation> {
    const endpoint = this.#choice.current(repo.domain);
    const headers = await this.#authHeaders(endpoint, repo, signal, deadline);
    return {
      url: endpointUrl(endpoint, blobPath(repo.path, digest)),
      headers,
      tls: endpoint.tls,
      mirror: endpoint.mirror ? endpoint.base : undefined,
      guard: this.#guard,
    };
  }

  /** The mirror that last answered for a registry's repositories; undefined when the registry itself did. */
  answeredFrom(domain: string): string | undefined {
    return this.#choice.answeredFrom(domain);
  }

  /** A mirror failed mid-pull: stop using it in this process and say so. */
  mirrorFailed(domain: string, mirrorBase: string, reason: string): void {
    this.#choice.mirrorFailed(domain, mirrorBase, reason);
  }

  /** Drop cached auth for a repository after a transfer met 401 (expired token). */
  invalidateAuth(repo: Repository): void {
    this.#auth.invalidate(this.#choice.current(repo.domain).host, pullScope(repo));
  }

  /** GET a blob (optionally from `offset`); the response is 200 or 206, anything else throws. */
  async openBlob(
    repo: Repository,
    digest: string,
    options: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<HttpResponse> {
    const offset = options.offset ?? 0;
    return this.#choice.firstAnswer(repo.domain, options.signal, async (endpoint) => {
      const ctx = context(repo, "blob", { digest });
      const deadline = this.deadline(repo.domain);
      const res = await this.#authorized(
        endpoint,
        repo,
        ctx,
        options.signal,
        deadline,
        (headers) => ({
          method: "GET",
          url: endpointUrl(endpoint, blobPath(repo.path, digest)),
          headers: offset > 0 ? { ...headers, range: `bytes=${offset}-` } : headers,
        }),
      );
      if (res.status === 200 || res.status === 206) return res;
      throw await errorFromResponse(res, ctx);
    });
  }

  /** Tags of a repository (first page of up to `n`), from the registry itself (a mirror may know only some). */
  async listTags(
    repo: Repository,
    options: { n?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const endpoint = upstreamEndpoint(repo.domain, this.#settings(repo.domain));
    const ctx = context(repo, "tags", {});
    const query =
      options.n === undefined ? undefined : new URLSearchParams({ n: String(options.n) });
    const deadline = this.deadline(repo.domain);
    const res = await this.#authorized(
      endpoint,
      repo,
      ctx,
      options.signal,
      deadline,
      (headers) => ({
        method: "GET",
        url: endpointUrl(endpoint, tagListPath(repo.path), query),
        headers,
      }),
    );
    if (res.status !== 200) throw await errorFromResponse(res, ctx);
    const body = JSON.parse(await readText(res)) as { tags?: unknown };
    return Array.isArray(body.tags)
      ? body.tags.filter((t): t is string => typeof t === "string")
      : [];
  }

  /**
   * Sends a request to the registry itself (never a mirror) with auth for
   * `scope` (space-separated scopes, e.g. "repository:a:push,pull
   * repository:b:pull" for a cross-repository mount). `build` gets the base URL
   * (`http://host:port`) and headers to send, empty: the auth policy (authorize.ts) adds
   * credentials to requests for the registry's origin, and to no other (an upload Location
   * on storage). The write side (push, copy) uses this; the response is returned whatever
   * its status.
   */
  async request(
    repo: Repository,
    options: { scope: string; signal?: AbortSignal | undefined; what?: RequestContext["what"] },
    build: (base: string, headers: Record<string, string>) => HttpRequest,
  ): Promise<HttpResponse> {
    const endpoint = upstreamEndpoint(repo.domain, this.#settings(repo.domain));
    const ctx = context(repo, options.what ?? "blob", {});
    return this.#authorized(
      endpoint,
      repo,
      ctx,
      options.signal,
      this.deadline(repo.domain),
      (headers) => build(endpoint.base, headers),
      options.scope,
    );
  }

  async #authHeaders(
    endpoint: Endpoint,
    repo: Repository,
    signal: AbortSignal | undefined,
    deadline: Deadline | undefined,
    scope = pullScope(repo),
  ): Promise<Record<string, string>> {
    const challenge = await this.ping(endpoint, signal, deadline);
    const value = await this.#auth.header(endpoint.host, challenge, scope, deadline);
    return value === undefined ? {} : { authorization: value };
  }

  /**
   * Sends `build({})` through the policies, outermost first: a 401 that survives renewal
   * classified (refusals.ts), a 401 renewed once (renew.ts), credentials for the endpoint's
   * origin with the first GET racing the ping (authorize.ts), retries within `deadline`
   * (retry.ts), then the transport. `build` gets no headers: the auth policy adds them.
   */
  #authorized(
    endpoint: Endpoint,
    repo: Repository,
    ctx: RequestContext,
    signal: AbortSignal | undefined,
    deadline: Deadline,
    build: (headers: Record<string, string>) => HttpRequest,
    scope = pullScope(repo),
  ): Promise<HttpResponse> {
    const host = endpoint.host;
    const challenge = () => this.ping(endpoint, signal, deadline);
    const send = compose(
      classifying401({
        host,
        repository: repo,
        challenge,
        hasCredentials: () => this.#auth.hasCredentials(host),
      }),
      renewingOn401({ ...ctx, host }, (learnt) => {
        this.#challenges.set(endpoint.base, Promise.resolve(learnt));
        this.#auth.invalidate(host, scope);
      }),
      authorizing({
        origin: new URL(endpoint.base).origin,
        known: () => this.#challenges.has(endpoint.base),
        challenge,
        authorization: (c) => this.#auth.header(host, c, scope, deadline),
      }),
      // Auth is resolved outside the retries: ping and token requests retry on their own.
      retrying(deadline, signal),
    )(this.#transport(deadline, endpoint, signal));
    return send(build({}));
  }

  /**
   * The transport as this client uses it (its guard, agents and user agent; the idle
   * timeout of `deadline`); with `endpoint`, requests go with its TLS settings and `signal`.
   */
  #transport(deadline: Deadline, endpoint?: Endpoint, signal?: AbortSignal): Send {
    return (req) =>
      send(
        {
          ...req,
          ...(endpoint === undefined ? {} : { tls: endpoint.tls, signal }),
          guard: this.#guard,
        },
        {
          agents: this.#agents,
          userAgent: this.#userAgent,
          idleTimeoutMs: deadline.idleTimeoutMs(),
        },
      );
  }
}

export function pullScope(repo: Repository): string {
  return `repository:${repo.path}:pull`;
}

function context(
  repo: Repository,
  what: RequestContext["what"],
  extra: { reference?: string; digest?: string },
): RequestContext {
  return { host: repo.domain, repository: repo.path, what, ...extra };
}
