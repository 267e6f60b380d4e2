/**
 * `ferry login` / `ferry logout`: credentials go where Docker would put them:
 * to the credential helper configured for the host, else into config.json's
 * `auths`. config.json is rewritten atomically, under a lock, mode 0600, with
 * every key ferry does not manage kept as it was.
 */
import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "../fsx/index.ts";
import {
  authFileOf,
  helperFor,
  holdsSecret,
  isPlainObject,
  parseJsonObject,
  SECRET_FIELDS,
} from "./auth-file.ts";
import { type HelperOptions, helperErase, helperStore } from "./credential-helper.ts";
import type { Credential } from "./credentials.ts";
import { DOCKER_FORMAT, dockerConfigPath } from "./docker-config.ts";
import { withFileLock } from "./file-lock.ts";
import { authKeyFor, canonicalHost, hostOfAuthKey } from "./registry-host.ts";

export interface CredentialStoreOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Home directory; default $HOME. */
  readonly home?: string;
  /** Kill credential helpers after this long; default 30 s. */
  readonly helperTimeoutMs?: number;
  /** Give up waiting for config.json's lock after this long; default 10 s. */
  readonly lockTimeoutMs?: number;
}

/** Where a saved credential went: a helper (its name after docker-credential-), or config.json in the clear. */
export type SavedCredential =
  | { readonly kind: "helper"; readonly helper: string }
  | { readonly kind: "file"; readonly path: string };

const CONFIG_FILE_MODE = 0o600;
const CONFIG_DIR_MODE = 0o700;

export async function saveCredential(
  host: string,
  credential: Credential,
  options: CredentialStoreOptions = {},
): Promise<SavedCredential> {
  const env = options.env ?? process.env;
  const path = dockerConfigPath(env, options.home);
  await mkdir(dirname(path), { recursive: true, mode: CONFIG_DIR_MODE });
  return withConfig<SavedCredential>(path, options, async (json) => {
    const helper = helperFor(authFileOf(path, json, DOCKER_FORMAT), host);
    if (helper !== undefined) {
      await helperStore(helper, authKeyFor(host), credential, helperOptions(env, options));
      // Plain-text copies would shadow what the helper now holds, as Docker's own store does.
      return { result: { kind: "helper", helper }, changed: stripSecrets(json, host) };
    }
    const auths = authsOf(json);
    const key = authKeyFor(host);
    const previous = auths[key];
    const entry: Record<string, unknown> = isPlainObject(previous) ? withoutSecrets(previous) : {};
    if ("password" in credential) {
      entry.auth = base64(`${credential.username}:${credential.password}`);
    } else {
      if (credential.username !== undefined) entry.auth = base64(`${credential.username}:`);
      entry.identitytoken = credential.identityToken;
    }
    auths[key] = entry;
    return { result: { kind: "file", path }, changed: true };
  });
}

/** Forgets the host's credential (helper and config.json); whether there was one. */
export async function removeCredential(
  host: string,
  options: CredentialStoreOptions = {},
): Promise<boolean> {
  const env = options.env ?? process.env;
  const path = dockerConfigPath(env, options.home);
  if ((await readConfigText(path)) === undefined) return false;
  return withConfig(path, options, async (json) => {
    const helper = helperFor(authFileOf(path, json, DOCKER_FORMAT), host);
    const erased =
      helper !== undefined &&
      (await helperErase(helper, authKeyFor(host), helperOptions(env, options)));
    const wanted = canonicalHost(host);
    const auths = isPlainObject(json.auths) ? json.auths : {};
    const keys = Object.keys(auths).filter((key) => hostOfAuthKey(key, DOCKER_FORMAT) === wanted);
    for (const key of keys) delete auths[key];
    return { result: erased || keys.length > 0, changed: keys.length > 0 };
  });
}

interface Edit<T> {
  readonly result: T;
  /** Whether the JSON was changed and must be written back. */
  readonly changed: boolean;
}

/** Read-modify-write of config.json under its lock. */
function withConfig<T>(
  path: string,
  options: CredentialStoreOptions,
  edit: (json: Record<string, unknown>) => Promise<Edit<T>>,
): Promise<T> {
  return withFileLock(
    `${path}.lock`,
    async () => {
      const text = await readConfigText(path);
      const json = text === undefined ? {} : parseJsonObject(path, text);
      const { result, changed } = await edit(json);
      if (changed) {
        await writeFileAtomic(path, `${JSON.stringify(json, null, "\t")}\n`, {
          mode: CONFIG_FILE_MODE,
          exactMode: true,
          followSymlink: true,
        });
      }
      return result;
    },
    { timeoutMs: options.lockTimeoutMs },
  );
}

async function readConfigText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return undefined;
    throw err;
  }
}

/** The `auths` object inside `json`, created if absent. */
function authsOf(json: Record<string, unknown>): Record<string, unknown> {
  if (!isPlainObject(json.auths)) json.auths = {};
  return json.auths as Record<string, unknown>;
}

/** Removes the secret fields of every `auths` entry naming `host`; whether any were there. */
function stripSecrets(json: Record<string, unknown>, host: string): boolean {
  if (!isPlainObject(json.auths)) return false;
  const wanted = canonicalHost(host);
  let changed = false;
  for (const [key, entry] of Object.entries(json.auths)) {
    if (hostOfAuthKey(key, DOCKER_FORMAT) !== wanted || !isPlainObject(entry)) continue;
    if (!holdsSecret(entry)) continue;
    json.auths[key] = withoutSecrets(entry);
    changed = true;
  }
  return changed;
}

function withoutSecrets(entry: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(entry).filter(([name]) => !SECRET_FIELDS.includes(name)),
  );
}

function helperOptions(env: NodeJS.ProcessEnv, options: CredentialStoreOptions): HelperOptions {
  return { env, timeoutMs: options.helperTimeoutMs };
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}
