/**
 * The credential file format shared by Docker's config.json and podman's
 * auth.json: `auths` (per-registry secrets), `credHelpers` (per-registry helper)
 * and `credsStore` (the default helper). Entries are decoded only when looked
 * up, so one broken entry does not break pulls from other registries.
 */
import { readFile } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";
import type { Credential } from "./credentials.ts";
import { canonicalHost, hostOfAuthKey } from "./registry-host.ts";

/** One `auths` entry as found: the key it was written under and its raw fields. */
export interface AuthEntry {
  readonly key: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface AuthFile {
  readonly path: string;
  /** Entries per canonical host, the key spelled like the host (or Docker's Hub key) first. */
  readonly auths: ReadonlyMap<string, readonly AuthEntry[]>;
  /** Helper name per canonical host. */
  readonly credHelpers: ReadonlyMap<string, string>;
  readonly credsStore: string | undefined;
}

export interface AuthFileFormat {
  /** podman: keys like "quay.io/org" are scoped to a namespace, not a host. */
  readonly namespaced: boolean;
  /** Docker's spelling of a host's key, preferred when several keys name it. */
  readonly preferredKey: (host: string) => string;
}

/** Reads a credential file; a missing file is an empty one. */
export async function readAuthFile(path: string, format: AuthFileFormat): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT" || code === "ENOTDIR") return emptyAuthFile(path);
    throw new FerryError("FERRY_CONFIG_INVALID", `cannot read credential file ${path} (${code})`, {
      hint: "check the file's permissions",
      fields: { path },
    });
  }
  return parseAuthFile(path, text, format);
}

export function emptyAuthFile(path: string): AuthFile {
  return { path, auths: new Map(), credHelpers: new Map(), credsStore: undefined };
}

export function parseAuthFile(path: string, text: string, format: AuthFileFormat): AuthFile {
  return authFileOf(path, parseJsonObject(path, text), format);
}

/** The credential view of a file's parsed JSON. */
export function authFileOf(
  path: string,
  json: Readonly<Record<string, unknown>>,
  format: AuthFileFormat,
): AuthFile {
  const auths = new Map<string, AuthEntry[]>();
  for (const [key, value] of Object.entries(objectField(path, json, "auths"))) {
    const host = hostOfAuthKey(key, format);
    if (host === undefined || !isPlainObject(value)) continue;
    const entry: AuthEntry = { key, fields: value };
    const list = auths.get(host) ?? [];
    if (key.toLowerCase() === format.preferredKey(host).toLowerCase()) list.unshift(entry);
    else list.push(entry);
    auths.set(host, list);
  }
  const credHelpers = new Map<string, string>();
  for (const [key, value] of Object.entries(objectField(path, json, "credHelpers"))) {
    const host = hostOfAuthKey(key, format);
    if (host === undefined || typeof value !== "string" || value === "") continue;
    credHelpers.set(host, helperName(path, `credHelpers.${key}`, value));
  }
  const store = json.credsStore;
  const credsStore =
    typeof store === "string" && store !== "" ? helperName(path, "credsStore", store) : undefined;
  return { path, auths, credHelpers, credsStore };
}

/** The helper that keeps `host`'s secrets in this file's view: credHelpers[host], else credsStore. */
export function helperFor(file: AuthFile, host: string): string | undefined {
  return file.credHelpers.get(canonicalHost(host)) ?? file.credsStore;
}

/** The credential an `auths` entry holds, or undefined for an entry without secrets (as credsStore users have). */
export function credentialOf(file: AuthFile, entry: AuthEntry): Credential | undefined {
  const { fields } = entry;
  let username = stringField(fields.username);
  let password = stringField(fields.password);
  const auth = stringField(fields.auth);
  if (auth !== undefined) {
    const decoded = Buffer.from(auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) {
      throw new FerryError(
        "FERRY_CONFIG_INVALID",
        `credential file ${file.path}: auths["${entry.key}"].auth is not base64 of "user:password"`,
        {
          hint: `log in again with \`ferry login\`, or fix the entry in ${file.path}`,
          fields: { path: file.path, key: entry.key },
        },
      );
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const identityToken = stringField(fields.identitytoken);
  if (identityToken !== undefined) {
    return username === undefined ? { identityToken } : { identityToken, username };
  }
  if (username === undefined || password === undefined) return undefined;
  return { username, password };
}

/** Whether an `auths` entry carries a secret (as opposed to Docker's empty `{}` marker). */
export function holdsSecret(fields: Readonly<Record<string, unknown>>): boolean {
  return SECRET_FIELDS.some((name) => stringField(fields[name]) !== undefined);
}

export const SECRET_FIELDS = ["auth", "username", "password", "identitytoken", "registrytoken"];

export function parseJsonObject(path: string, text: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault, which may be a secret: never pass it on.
    throw new FerryError("FERRY_CONFIG_INVALID", `credential file ${path} is not valid JSON`, {
      hint: `fix or remove ${path}`,
      fields: { path },
    });
  }
  if (!isPlainObject(value)) {
    throw new FerryError("FERRY_CONFIG_INVALID", `credential file ${path} is not a JSON object`, {
      hint: `fix or remove ${path}`,
      fields: { path },
    });
  }
  return value;
}

function objectField(
  path: string,
  json: Readonly<Record<string, unknown>>,
  name: string,
): Record<string, unknown> {
  const value = json[name];
  if (value === undefined || value === null) return {};
  if (isPlainObject(value)) return value;
  throw new FerryError(
    "FERRY_CONFIG_INVALID",
    `credential file ${path}: "${name}" is not an object`,
    {
      hint: `fix or remove ${path}`,
      fields: { path, key: name },
    },
  );
}

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function helperName(path: string, key: string, name: string): string {
  if (HELPER_NAME.test(name)) return name;
  throw new FerryError(
    "FERRY_CONFIG_INVALID",
    `credential file ${path}: ${key} names no valid credential helper ("${name}")`,
    {
      hint: 'a helper is named by the part after docker-credential-, e.g. "pass" or "ecr-login"',
      fields: { path, key },
    },
  );
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringField(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}
