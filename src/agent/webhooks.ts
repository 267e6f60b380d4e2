/**
 * The webhook receiver's decisions, pure: is the sender who it claims (a shared secret as a
 * bearer token, a `?token=` or GitHub's HMAC signature), which images does the notification
 * name, and may this machine pull them (an allow-list of repository prefixes). The HTTP side
 * (status.ts) reads the body under a size limit and answers with the status decided here.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { FerryError, isFerryError } from "../observe/index.ts";
import {
  DEFAULT_DOMAIN,
  formatReference,
  parseRepository,
  type Reference,
  repositoryName,
} from "../reference/index.ts";
import { header, type PushedImage, parsePush, type WebhookKind } from "./webhook-formats.ts";

export {
  GITHUB_CONTAINER_REGISTRY,
  type ParsedPush,
  type PushedImage,
  parsePush,
  WEBHOOK_KINDS,
  type WebhookKind,
} from "./webhook-formats.ts";

/** Larger bodies are refused with 413 before they are parsed. */
export const MAX_WEBHOOK_BODY_BYTES = 1 << 20;

export interface WebhookRequest {
  readonly kind: WebhookKind;
  /** Lower-cased names, as node:http gives them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly query: URLSearchParams;
  /** The raw body: GitHub signs these exact bytes. */
  readonly body: Uint8Array;
}

export interface WebhookPolicy {
  readonly secret: string;
  readonly allow: AllowList;
  /** The registry's name for clients, when Distribution's Host header is not it. */
  readonly registryHost?: string | undefined;
}

export type WebhookDecision =
  | { readonly status: 400 | 401; readonly reason: string }
  | { readonly status: 403; readonly reason: string; readonly refused: readonly string[] }
  | {
      readonly status: 202;
      readonly accepted: readonly PushedImage[];
      readonly refused: readonly string[];
      readonly ignored: number;
      readonly notes: readonly string[];
    };

export function decideWebhook(request: WebhookRequest, policy: WebhookPolicy): WebhookDecision {
  const auth = authorize(request, policy.secret);
  if (!auth.ok) return { status: 401, reason: auth.reason };
  let parsed: ReturnType<typeof parsePush>;
  try {
    parsed = parsePush(request.kind, request.body, {
      registryHost: policy.registryHost,
      headers: request.headers,
    });
  } catch (err) {
    if (!isFerryError(err, "FERRY_INVALID_ARGUMENT")) throw err;
    return { status: 400, reason: err.message };
  }
  const accepted = parsed.images.filter((i) => policy.allow.allows(i.ref));
  const refused = parsed.images
    .filter((i) => !policy.allow.allows(i.ref))
    .map((i) => formatReference(i.ref));
  // Distribution retries a refused envelope forever and holds every later event behind it,
  // so it is told 202 (the refusal is logged and counted); other senders get 403.
  if (accepted.length === 0 && refused.length > 0 && request.kind !== "distribution") {
    return {
      status: 403,
      reason: `not on the allow-list: ${refused.join(", ")}`,
      refused,
    };
  }
  return { status: 202, accepted, refused, ignored: parsed.ignored, notes: parsed.notes };
}

export type Authorization =
  | { readonly ok: true; readonly method: "bearer" | "token" | "signature" }
  | { readonly ok: false; readonly reason: string };

/** Accepts when any credential the request presents matches the secret. */
export function authorize(request: WebhookRequest, secret: string): Authorization {
  const presented: string[] = [];
  const authorization = header(request.headers, "authorization");
  if (authorization !== undefined) {
    presented.push("Authorization header");
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m !== null && sameSecret(m[1] as string, secret)) return { ok: true, method: "bearer" };
  }
  const token = request.query.get("token");
  if (token !== null) {
    presented.push("?token");
    if (sameSecret(token, secret)) return { ok: true, method: "token" };
  }
  const signature = header(request.headers, "x-hub-signature-256");
  if (signature !== undefined && request.kind === "github") {
    presented.push("X-Hub-Signature-256");
    const expected = `sha256=${createHmac("sha256", secret).update(request.body).digest("hex")}`;
    if (sameSecret(signature.toLowerCase(), expected)) return { ok: true, method: "signature" };
  }
  return presented.length === 0
    ? {
        ok: false,
        reason:
          request.kind === "github"
            ? "no credentials: expected X-Hub-Signature-256, Authorization: Bearer or ?token="
            : "no credentials: expected Authorization: Bearer or ?token=",
      }
    : { ok: false, reason: `wrong secret (${presented.join(", ")})` };
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function sameSecret(given: string, secret: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(secret).digest();
  return timingSafeEqual(a, b) && given.length === secret.length;
}

/**
 * Repository prefixes a webhook may make this machine pull, compared whole path segment by
 * segment: `registry.example.com/team` allows `registry.example.com/team/app`, not
 * `registry.example.com/team-b/app`. `*` allows everything.
 */
export class AllowList {
  readonly prefixes: readonly string[];
  /** Exact references allowed whatever the prefixes: the listed images. */
  readonly #images: ReadonlySet<string>;

  constructor(prefixes: readonly string[], images: readonly Reference[] = []) {
    this.prefixes = [...new Set(prefixes.map(normalizePrefix))];
    this.#images = new Set(images.map((r) => formatReference(r)));
  }

  /** The repositories of listed images: what the agent allows when no prefixes are given. */
  static ofRepositories(refs: readonly Reference[]): AllowList {
    return new AllowList(refs.map((r) => repositoryName(r)));
  }

  allows(ref: Reference): boolean {
    if (this.#images.has(formatReference(ref))) return true;
    const name = repositoryName(ref);
    return this.prefixes.some((p) => p === "*" || name === p || name.startsWith(`${p}/`));
  }
}

/**
 * `registry.example.com/team` stays; a name without a registry host is on Docker Hub
 * (`acme` → docker.io/acme; official images are `library/NAME`); a bare host allows all of it.
 */
export function normalizePrefix(text: string): string {
  const trimmed = text.trim().replace(/\/+$/, "");
  if (trimmed === "*") return trimmed;
  if (trimmed === "" || /[\s@]/.test(trimmed)) {
    throw badPrefix(text, "expected a repository prefix such as registry.example.com/team");
  }
  const first = trimmed.split("/")[0] as string;
  const isHost = first === "localhost" || first.includes(".") || first.includes(":");
  const rest = isHost ? trimmed.slice(first.length + 1) : trimmed;
  try {
    // Validated (and Docker Hub's old host name folded) by the reference grammar.
    const repo = parseRepository(`${isHost ? first : DEFAULT_DOMAIN}/${rest === "" ? "x" : rest}`);
    if (rest === "") return repo.domain;
    // parseRepository reads a one-element Docker Hub name as library/NAME; a prefix means the namespace.
    if (repo.domain === DEFAULT_DOMAIN && !rest.includes("/")) return `${repo.domain}/${rest}`;
    return repositoryName(repo);
  } catch (err) {
    if (!isFerryError(err)) throw err;
    throw badPrefix(text, err.message);
  }
}

function badPrefix(text: string, reason: string): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", `--allow "${text}": ${reason}`, {
    hint: "give repository prefixes: registry.example.com/team, ghcr.io/acme, library/nginx, or * for any",
    fields: { prefix: text },
  });
}
