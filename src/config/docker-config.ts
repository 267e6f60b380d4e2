/**
 * Docker's credential configuration, and the lookup rules over any file in
 * its format: credHelpers[host], then auths[host], then credsStore.
 */
import { join } from "node:path";
import { type AuthFile, type AuthFileFormat, credentialOf, readAuthFile } from "./auth-file.ts";
import { helperGet, type HelperOptions } from "./credential-helper.ts";
import type { Credential, CredentialSource } from "./credentials.ts";
import { homeDirectory } from "./home.ts";
import { authKeyFor, canonicalHost } from "./registry-host.ts";

export const DOCKER_CONFIG_FILE = "config.json";

export const DOCKER_FORMAT: AuthFileFormat = { namespaced: false, preferredKey: authKeyFor };

export interface CredentialFileOptions {
  /** Home directory; default $HOME, else the OS's idea of it. */
  readonly home?: string;
  /** Kill credential helpers after this long; default 30 s. */
  readonly helperTimeoutMs?: number;
  /** Reuse a helper's answer for this long; default 5 minutes (helpers can be slow, tokens can expire). */
  readonly helperCacheMs?: number;
  readonly now?: () => number;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env, home?: string): string {
  const dir = env.DOCKER_CONFIG;
  return join(
    dir !== undefined && dir !== "" ? dir : join(homeDirectory(env, home), ".docker"),
    DOCKER_CONFIG_FILE,
  );
}

const DEFAULT_HELPER_CACHE_MS = 5 * 60_000;

interface CachedAnswer {
  readonly answer: Promise<Credential | undefined>;
  readonly expiresAt: number;
}

/**
 * Credentials from one file in Docker's format. The file is read once, on
 * first use; helper answers are kept for a while. Nothing here logs.
 */
export class AuthFileSource implements CredentialSource {
  readonly path: string;
  readonly #format: AuthFileFormat;
  readonly #helper: HelperOptions;
  readonly #helperCacheMs: number;
  readonly #now: () => number;
  #file: Promise<AuthFile> | undefined;
  readonly #answers = new Map<string, CachedAnswer>();

  constructor(
    path: string,
    format: AuthFileFormat,
    options: CredentialFileOptions & { env?: NodeJS.ProcessEnv } = {},
  ) {
    this.path = path;
    this.#format = format;
    this.#helper = { env: options.env ?? process.env, timeoutMs: options.helperTimeoutMs };
    this.#helperCacheMs = options.helperCacheMs ?? DEFAULT_HELPER_CACHE_MS;
    this.#now = options.now ?? Date.now;
  }

  async get(registryHost: string): Promise<Credential | undefined> {
    const host = canonicalHost(registryHost);
    const file = await this.#read();
    const helper = file.credHelpers.get(host);
    if (helper !== undefined) {
      const credential = await this.#ask(helper, host);
      if (credential !== undefined) return credential;
    }
    for (const entry of file.auths.get(host) ?? []) {
      const credential = credentialOf(file, entry);
      if (credential !== undefined) return credential;
    }
    if (file.credsStore !== undefined && file.credsStore !== helper) {
      return this.#ask(file.credsStore, host);
    }
    return undefined;
  }

  #read(): Promise<AuthFile> {
    if (this.#file === undefined) {
      this.#file = readAuthFile(this.path, this.#format);
      // A failed read is reported to every caller, not remembered.
      this.#file.catch(() => {
        this.#file = undefined;
      });
    }
    return this.#file;
  }

  #ask(helper: string, host: string): Promise<Credential | undefined> {
    const key = `${helper} ${host}`;
    const cached = this.#answers.get(key);
    if (cached !== undefined && cached.expiresAt > this.#now()) return cached.answer;
    const answer = helperGet(helper, authKeyFor(host), this.#helper);
    this.#answers.set(key, { answer, expiresAt: this.#now() + this.#helperCacheMs });
    answer.catch(() => this.#answers.delete(key));
    return answer;
  }
}
