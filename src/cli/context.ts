import { resolve } from "node:path";
import {
  type CredentialSource,
  defaultCredentialSource,
  type FerryConfig,
  loadFerryConfig,
  registrySettingsResolver,
} from "../config/index.ts";
import {
  DEFAULT_RETRY,
  type HostSettings,
  RegistryClient,
  type RegistryEvent,
} from "../registry/index.ts";
import { defaultStoreRoot, parseDuration, Store } from "../store/index.ts";
import { type Output, usageError } from "./output.ts";

/** The usage line of `--timeout`, for the commands that pull. */
export const TIMEOUT_USAGE = `  --timeout DURATION            give up on a manifest or blob after this long without progress,
                                over all its retries (default ${DEFAULT_RETRY.maxElapsedMs / 1000}s, or the registry's
                                timeoutSeconds in the config file), e.g. 30s, 5m
`;

/** `--timeout`: a duration of at least one second. */
export function parseTimeout(text: string): number {
  // A bare number is most likely seconds here (the shared duration hint speaks of hours and days).
  if (/^\d+$/.test(text.trim())) {
    throw usageError(
      `--timeout "${text}" has no unit`,
      `e.g. --timeout ${text.trim()}s (s, m or h)`,
    );
  }
  const ms = parseDuration(text, "--timeout");
  if (ms < 1000)
    throw usageError(`--timeout must be at least 1s, got "${text}"`, "e.g. --timeout 30s");
  return ms;
}

export interface GlobalOptions {
  store?: string | undefined;
  config?: string | undefined;
}

/** The store a command works on: --store, else $FERRY_STORE, else the default location. */
export function storeRoot(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(options.store ?? defaultStoreRoot(env));
}

export async function openStore(options: GlobalOptions): Promise<Store> {
  return Store.open(storeRoot(options));
}

export function loadConfig(options: GlobalOptions): FerryConfig {
  return loadFerryConfig(options.config === undefined ? {} : { path: options.config });
}

/** Settings of the config file, in the shape the registry client takes. */
export function hostSettings(config: FerryConfig): (host: string) => HostSettings {
  const resolveHost = registrySettingsResolver(config);
  const cache = new Map<string, HostSettings>();
  return (host) => {
    let settings = cache.get(host);
    if (settings === undefined) {
      const s = resolveHost(host);
      const tls = {
        ...(s.ca ? { ca: s.ca } : {}),
        ...(s.clientCert ? { cert: s.clientCert } : {}),
        ...(s.clientKey ? { key: s.clientKey } : {}),
        ...(s.skipVerify ? { rejectUnauthorized: false } : {}),
      };
      settings = {
        mirrors: [...s.mirrors],
        plainHttp: s.plainHttp,
        ...(Object.keys(tls).length > 0 ? { tls } : {}),
        ...(s.timeoutMs === undefined ? {} : { timeoutMs: s.timeoutMs }),
      };
      cache.set(host, settings);
    }
    return settings;
  };
}

export function createRegistryClient(
  options: GlobalOptions & {
    credentials?: CredentialSource;
    output?: Output;
    /** `--timeout`: the deadline of each manifest and blob, over the config file's. */
    timeoutMs?: number | undefined;
  },
): RegistryClient {
  const config = loadConfig(options);
  const output = options.output;
  return new RegistryClient({
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    credentials: options.credentials ?? defaultCredentialSource(),
    settings: hostSettings(config),
    onEvent: (event: RegistryEvent) => {
      if (event.type === "mirror-fallback" && output !== undefined) {
        output.err(
          `ferry: mirror ${event.mirror} failed (${event.reason}); using ${event.registry} directly\n`,
        );
      }
    },
  });
}
