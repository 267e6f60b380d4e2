import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";
import { DistributionError } from "./errors.ts";

/** The mirror's own client auth: users with their repositories, and what anonymous clients may read. */
export interface AccessPolicy {
  users: ReadonlyMap<string, { passwordSha256: Buffer; repositories: readonly string[] }>;
  /** Repository prefixes anonymous clients may read (still only once proven public upstream). */
  anonymous: readonly string[];
}

/** Who a request is from, as far as the mirror is concerned. */
export type Client = { kind: "anonymous" } | { kind: "user"; name: string };

export const REALM = "ferry-mirror";

const challenge = { "www-authenticate": `Basic realm="${REALM}"` };

/** 401 with the Basic challenge, so `docker login` to the mirror works. */
export function unauthorized(message: string): DistributionError {
  return new DistributionError(401, "UNAUTHORIZED", message, { headers: challenge });
}

/**
 * `repository` (domain/path) is under `prefix` when equal to it or below it on a whole
 * path segment; `*` matches everything; a trailing `/` or `/*` on the prefix is ignored.
 */
export function underPrefix(repository: string, prefix: string): boolean {
  const p = prefix.replace(/\/\*?$/, "");
  if (p === "*" || p === "") return true;
  return repository === p || repository.startsWith(`${p}/`);
}

/**
 * The client a request comes from: undefined credentials → anonymous; a bad or unknown
 * user/password → 401 with the challenge.
 */
export function authenticate(policy: AccessPolicy, authorization: string | undefined): Client {
  if (authorization === undefined) return { kind: "anonymous" };
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (m === null) throw unauthorized("only HTTP Basic credentials are accepted");
  const decoded = Buffer.from(m[1] as string, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw unauthorized("malformed Basic credentials");
  const name = decoded.slice(0, colon);
  const given = createHash("sha256")
    .update(decoded.slice(colon + 1), "utf8")
    .digest();
  const user = policy.users.get(name);
  // Compare even for unknown users, so timing does not tell which names exist.
  const expected = user?.passwordSha256 ?? Buffer.alloc(32);
  const same = expected.length === given.length && timingSafeEqual(expected, given);
  if (user === undefined || !same) throw unauthorized("invalid username or password");
  return { kind: "user", name };
}

/**
 * Whether `client` may read `repository`: a user needs one of their prefixes (else 403
 * DENIED); an anonymous client needs an `anonymous` prefix (else 401 with the challenge).
 * Returns "public-only" when the client is anonymous: the repository must still be proven
 * anonymously readable upstream.
 */
export function authorize(
  policy: AccessPolicy,
  client: Client,
  repository: string,
): "granted" | "public-only" {
  if (client.kind === "user") {
    const user = policy.users.get(client.name);
    if (user?.repositories.some((p) => underPrefix(repository, p))) return "granted";
    throw new DistributionError(403, "DENIED", `user ${client.name} may not read ${repository}`);
  }
  if (policy.anonymous.some((p) => underPrefix(repository, p))) return "public-only";
  throw unauthorized(`authentication required to read ${repository}`);
}

/** Reads and checks an `--auth-file` (YAML: `users: {NAME: {passwordSha256, repositories}}`, `anonymous`). */
export async function loadAccessPolicy(path: string): Promise<AccessPolicy> {
  const yaml = await import("yaml");
  let doc: unknown;
  try {
    doc = yaml.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw invalid(path, (err as Error).message);
  }
  return parseAccessPolicy(doc, path);
}

export function parseAccessPolicy(doc: unknown, path = "auth file"): AccessPolicy {
  if (!isRecord(doc)) throw invalid(path, "expected a mapping with users and/or anonymous");
  for (const key of Object.keys(doc)) {
    if (key !== "users" && key !== "anonymous") throw invalid(path, `unknown key "${key}"`);
  }
  const users = new Map<string, { passwordSha256: Buffer; repositories: string[] }>();
  const rawUsers = doc.users ?? {};
  if (!isRecord(rawUsers)) throw invalid(path, "users must be a mapping of names");
  for (const [name, u] of Object.entries(rawUsers)) {
    if (name.includes(":")) throw invalid(path, `user name "${name}" may not contain ":"`);
    if (!isRecord(u)) throw invalid(path, `users.${name} must be a mapping`);
    const hex = u.passwordSha256;
    if (typeof hex !== "string" || !/^[0-9a-f]{64}$/i.test(hex))
      throw invalid(path, `users.${name}.passwordSha256 must be 64 hex digits`);
    users.set(name, {
      passwordSha256: Buffer.from(hex, "hex"),
      repositories: stringList(u.repositories ?? [], `users.${name}.repositories`, path),
    });
  }
  return { users, anonymous: stringList(doc.anonymous ?? [], "anonymous", path) };
}

function stringList(value: unknown, what: string, path: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string" && v !== ""))
    throw invalid(path, `${what} must be a list of repository prefixes`);
  return value as string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(path: string, why: string): FerryError {
  return new FerryError("FERRY_CONFIG_INVALID", `invalid mirror auth file ${path}: ${why}`, {
    hint: "see README, Registry mirror",
  });
}
