import { anonymous, type CredentialSource } from "../config/index.ts";
import { FerryError } from "../observe/index.ts";
import type { Challenge } from "./challenge.ts";
import type { Deadline } from "./deadline.ts";
import { errorFromResponse, PROTOCOL_HINT } from "./errors.ts";
import { readText } from "./body.ts";
import { redact } from "./network-error.ts";
import type { HttpRequest, HttpResponse } from "./transport.ts";

export { anonymous, type Credential, type CredentialSource } from "../config/index.ts";

/** Sends a token request within `deadline` (the manifest's or blob's that needs the token), else its own. */
export type Sender = (req: HttpRequest, deadline?: Deadline) => Promise<HttpResponse>;

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** Leave this much of a token's lifetime unused, so it does not expire mid-request. */
const EXPIRY_MARGIN_MS = 10_000;
const DEFAULT_TOKEN_LIFETIME_S = 60;

/**
 * Turns a host's auth challenge plus stored credentials into an Authorization
 * header for a scope. Bearer tokens are cached per (host, scope) until expiry.
 */
export class Authenticator {
  readonly #credentials: CredentialSource;
  readonly #send: Sender;
  readonly #now: () => number;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<string | undefined>>();

  constructor(options: { credentials?: CredentialSource; send: Sender; now?: () => number }) {
    this.#credentials = options.credentials ?? anonymous;
    this.#send = options.send;
    this.#now = options.now ?? Date.now;
  }

  /** The header to send to `host` for `scope`, given the challenge it answered with (undefined: none needed). */
  async header(
    host: string,
    challenge: Challenge | undefined,
    scope: string,
    deadline?: Deadline,
  ): Promise<string | undefined> {
    if (challenge === undefined) return undefined;
    if (challenge.scheme === "basic") {
      const cred = await this.#credentials.get(host);
      if (cred === undefined || !("password" in cred)) return undefined;
      return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
    }
    if (challenge.scheme !== "bearer") {
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${host} asks for unsupported authentication "${challenge.scheme}"`,
        {
          hint: "ferry supports Basic and Bearer token authentication",
        },
      );
    }
    const key = `${host} ${scope}`;
    const cached = this.#tokens.get(key);
    if (cached !== undefined && cached.expiresAt > this.#now()) return cached.header;
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#fetchToken(host, challenge, scope, deadline).finally(() =>
        this.#inflight.delete(key),
      );
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  /** Forget a token the registry refused, so the next call fetches a fresh one. */
  invalidate(host: string, scope: string): void {
    this.#tokens.delete(`${host} ${scope}`);
  }

  async hasCredentials(host: string): Promise<boolean> {
    return (await this.#credentials.get(host)) !== undefined;
  }

  async #fetchToken(
    host: string,
    challenge: Challenge,
    scope: string,
    deadline: Deadline | undefined,
  ): Promise<string | undefined> {
    const realm = challenge.params.realm;
    if (realm === undefined) {
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${host} sent a Bearer challenge without a realm`,
        { hint: PROTOCOL_HINT, fields: { host } },
      );
    }
    const cred = await this.#credentials.get(host);
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `registry ${host} named an invalid token realm ${JSON.stringify(realm)}`,
        { hint: PROTOCOL_HINT, fields: { host }, cause },
      );
    }
    const service = challenge.params.service;
    let req: HttpRequest;
    if (cred !== undefined && "identityToken" in cred) {
      // OAuth2 refresh-token grant, as Docker does with an identity token.
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: cred.identityToken,
        client_id: "ferry",
      });
      if (service !== undefined) form.set("service", service);
      if (scope !== "") form.set("scope", scope); // OAuth2: one space-delimited value
      req = {
        method: "POST",
        url: url.toString(),
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
      };
    } else {
      if (service !== undefined) url.searchParams.set("service", service);
      for (const one of scope.split(" ").filter(Boolean)) url.searchParams.append("scope", one);
      const headers: Record<string, string> = {};
      if (cred !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
      }
      req = { method: "GET", url: url.toString(), headers };
    }
    const res = await this.#send(req, deadline);
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      if (cred !== undefined) {
        throw new FerryError(
          "FERRY_AUTH_REJECTED",
          `registry ${host} rejected the stored credentials`,
          {
            hint: `log in again with \`ferry login ${host}\``,
            fields: { host, realm: redact(realm) },
          },
        );
      }
      throw new FerryError("FERRY_AUTH_REQUIRED", `registry ${host} requires authentication`, {
        hint: `log in with \`ferry login ${host}\``,
        fields: { host },
      });
    }
    if (res.status !== 200) {
      throw await errorFromResponse(res, { host: url.host, repository: scope, what: "token" });
    }
    const body = JSON.parse(await readText(res, 1024 * 1024)) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
      issued_at?: string;
    };
    const token = body.token ?? body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new FerryError(
        "FERRY_REGISTRY_ERROR",
        `token server for ${host} answered without a token`,
        { hint: PROTOCOL_HINT, fields: { host } },
      );
    }
    const lifetimeS =
      typeof body.expires_in === "number" && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const issued = body.issued_at ? Date.parse(body.issued_at) : Number.NaN;
    const start = Number.isNaN(issued) ? this.#now() : Math.min(issued, this.#now());
    const headerValue = `Bearer ${token}`;
    this.#tokens.set(`${host} ${scope}`, {
      header: headerValue,
      // Short-lived tokens keep half their life, so they are still reused.
      expiresAt: start + lifetimeS * 1000 - Math.min(EXPIRY_MARGIN_MS, (lifetimeS * 1000) / 2),
    });
    return headerValue;
  }
}
