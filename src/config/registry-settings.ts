/** What the registry client needs to know about one registry, from ferry's config with defaults filled in. */
import { readFileSync } from "node:fs";
import { isLoopbackHost } from "../reference/index.ts";
import type { FerryConfig, RegistryConfig } from "./ferry-config.ts";
import { configInvalid, keyPath } from "./ferry-config.ts";
import { canonicalHost } from "./registry-host.ts";

export interface RegistrySettings {
  /** The canonical host the settings are for (Docker Hub's names folded into one). */
  readonly host: string;
  /** Mirror base URLs to try, in order, before the registry itself. */
  readonly mirrors: readonly string[];
  /** Speak http:// to the registry: as configured, else only for loopback hosts. */
  readonly plainHttp: boolean;
  /** TLS without certificate verification. */
  readonly skipVerify: boolean;
  /** Extra CA certificates (PEM, possibly several). */
  readonly ca?: Buffer;
  /** Client certificate and key (PEM) for mTLS; both or neither. */
  readonly clientCert?: Buffer;
  readonly clientKey?: Buffer;
  /** How long a manifest or blob may go without progress (`timeoutSeconds`); unset: the default. */
  readonly timeoutMs?: number;
}

const PEM_BEGIN = "-----BEGIN ";

/** Settings for `host` (any spelling of it); defaults when the config says nothing. Reads the CA and certificate files. */
export function registrySettings(config: FerryConfig, host: string): RegistrySettings {
  const canonical = canonicalHost(host);
  const entry: RegistryConfig | undefined = config.registries.get(canonical);
  const pem = (name: "ca" | "clientCert" | "clientKey") => {
    const file = entry?.[name];
    return file === undefined ? undefined : readPem(config, entry?.key ?? canonical, name, file);
  };
  const settings: RegistrySettings = {
    host: canonical,
    mirrors: entry?.mirrors ?? [],
    plainHttp: entry?.plainHttp ?? isLoopbackHost(canonical),
    skipVerify: entry?.skipVerify ?? false,
  };
  const ca = pem("ca");
  const clientCert = pem("clientCert");
  const clientKey = pem("clientKey");
  const timeoutSeconds = entry?.timeoutSeconds;
  return {
    ...settings,
    ...(timeoutSeconds === undefined ? {} : { timeoutMs: timeoutSeconds * 1000 }),
    ...(ca === undefined ? {} : { ca }),
    ...(clientCert === undefined ? {} : { clientCert }),
    ...(clientKey === undefined ? {} : { clientKey }),
  };
}

/**
 * `registrySettings` for one config, remembered per host, for callers that ask
 * on every request. Failures are not remembered: they are thrown each time.
 */
export function registrySettingsResolver(config: FerryConfig): (host: string) => RegistrySettings {
  const known = new Map<string, RegistrySettings>();
  return (host) => {
    const canonical = canonicalHost(host);
    let settings = known.get(canonical);
    if (settings === undefined) {
      settings = registrySettings(config, canonical);
      known.set(canonical, settings);
    }
    return settings;
  };
}

function readPem(config: FerryConfig, host: string, name: string, file: string): Buffer {
  const key = keyPath(["registries", host, name]);
  const source = config.path ?? "the config";
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as { code?: string }).code ?? "error";
    throw configInvalid(
      source,
      undefined,
      ["registries", host, name],
      `cannot read ${file} (${code})`,
      {
        hint: `check that ${file} exists and is readable, or fix ${key} in ${source}`,
      },
    );
  }
  if (!bytes.includes(PEM_BEGIN)) {
    throw configInvalid(
      source,
      undefined,
      ["registries", host, name],
      `${file} is not a PEM file`,
      {
        hint: `${key} must name a PEM file (text starting with "-----BEGIN …")`,
      },
    );
  }
  return bytes;
}
