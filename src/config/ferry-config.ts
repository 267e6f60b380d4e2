/**
 * ferry's own config file (YAML): per-registry mirrors and TLS. Found at an
 * explicit path, else $FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config.yaml
 * (~/.config/…; /etc/ferry/config.yaml as root). A missing default file means
 * defaults; a missing explicit one is an error.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type * as Yaml from "yaml";
import type * as Zod from "zod";
import { FerryError } from "../observe/index.ts";
import { homeDirectory } from "./home.ts";
import {
  type FerryConfigDocument,
  ferryConfigSchema,
  KEY_HINTS,
  MIRROR_KEYS,
  normalizeMirror,
  PEER_KEYS,
  REGISTRY_KEYS,
  TOP_LEVEL_KEYS,
} from "./ferry-config-schema.ts";
import { canonicalHost } from "./registry-host.ts";
import { locate, type Position } from "./yaml-location.ts";

/** One registry's settings as written in the file, paths made absolute. */
export interface RegistryConfig {
  /** The key as written in the file, for messages. */
  readonly key: string;
  readonly mirrors: readonly string[];
  /** Unset: plain HTTP only for loopback hosts. */
  readonly plainHttp?: boolean;
  readonly skipVerify: boolean;
  readonly ca?: string;
  readonly clientCert?: string;
  readonly clientKey?: string;
  /** The deadline of each manifest and blob from this registry (see registry/deadline.ts). */
  readonly timeoutSeconds?: number;
}

/** Peer sharing settings (`peers:`), used by `ferry mirror` and `ferry pull` where flags are absent. */
export interface PeersConfig {
  /** As `--peers` takes it: `HOST:PORT,...`, or `kubernetes[:SERVICE]`. */
  readonly members?: string;
  /** Absolute path of the fleet key. */
  readonly keyFile?: string;
  /** As `--peer-listen` takes it. */
  readonly listen?: string;
}

/** `ferry mirror`'s settings (`mirror:`), where flags are absent. */
export interface MirrorConfig {
  /** Registries served besides the upstream, as `--allow-ns` takes them (`*`: any). */
  readonly namespaces?: readonly string[];
}

export interface FerryConfig {
  /** The file read, or undefined when defaults apply. */
  readonly path: string | undefined;
  /** Keyed by canonical host (Docker Hub's names folded into one). */
  readonly registries: ReadonlyMap<string, RegistryConfig>;
  readonly peers?: PeersConfig;
  readonly mirror?: MirrorConfig;
}

export const DEFAULT_FERRY_CONFIG: FerryConfig = { path: undefined, registries: new Map() };

export interface FerryConfigOptions {
  /** An explicit file (e.g. --config); it must exist. */
  readonly path?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
  /** Whether to use the system-wide default; default: running as root. */
  readonly system?: boolean;
}

const SYSTEM_CONFIG = "/etc/ferry/config.yaml";
const require = createRequire(import.meta.url);

/** The file to read, and whether the user named it (so that its absence is an error). */
export function ferryConfigPath(options: FerryConfigOptions = {}): {
  path: string;
  explicit: boolean;
} {
  const env = options.env ?? process.env;
  if (options.path !== undefined) return { path: resolve(options.path), explicit: true };
  if (env.FERRY_CONFIG !== undefined && env.FERRY_CONFIG !== "") {
    return { path: resolve(env.FERRY_CONFIG), explicit: true };
  }
  if (options.system ?? process.getuid?.() === 0) return { path: SYSTEM_CONFIG, explicit: false };
  const xdg = env.XDG_CONFIG_HOME;
  const base =
    xdg !== undefined && isAbsolute(xdg) ? xdg : join(homeDirectory(env, options.home), ".config");
  return { path: join(base, "ferry", "config.yaml"), explicit: false };
}

export function loadFerryConfig(options: FerryConfigOptions = {}): FerryConfig {
  const { path, explicit } = ferryConfigPath(options);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    if ((code === "ENOENT" || code === "ENOTDIR") && !explicit) return DEFAULT_FERRY_CONFIG;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new FerryError("FERRY_CONFIG_NOT_FOUND", `config file ${path} does not exist`, {
        hint: "check the path given with --config or FERRY_CONFIG",
        fields: { path },
      });
    }
    throw new FerryError("FERRY_CONFIG_INVALID", `cannot read config file ${path} (${code})`, {
      hint: "check the file's permissions",
      fields: { path },
      cause: err,
    });
  }
  return parseFerryConfig(path, text);
}

/** Parses and validates the text of a config file read from `path`. */
export function parseFerryConfig(path: string, text: string): FerryConfig {
  const yaml = require("yaml") as typeof Yaml;
  const lineCounter = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const at = lineCounter.linePos(syntax.pos[0]);
    throw configInvalid(path, at, undefined, `not valid YAML: ${syntax.message}`, {
      hint: "fix the YAML syntax at that position",
    });
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    // e.g. an alias bomb: the library refuses to expand it.
    throw configInvalid(path, undefined, undefined, `cannot be read as data: ${String(err)}`, {
      hint: "simplify the file's anchors and aliases",
    });
  }
  const result = ferryConfigSchema().safeParse(value);
  if (!result.success) {
    const issues = result.error.issues
      .flatMap((issue) => describeIssue(issue))
      .map((issue) => ({ ...issue, at: locate(yaml, doc, lineCounter, issue.path, issue.at) }))
      .sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col);
    const first = issues[0]!;
    throw configInvalid(path, first.at, first.path, first.message, {
      hint: first.hint,
      more: issues
        .slice(1)
        .map((i) => `${i.at.line}:${i.at.col}: ${keyPath(i.path)}: ${i.message}`),
    });
  }
  return toConfig(yaml, doc, lineCounter, path, result.data);
}

interface Problem {
  readonly path: readonly PropertyKey[];
  readonly at: "key" | "value";
  readonly message: string;
  readonly hint: string;
}

function describeIssue(issue: Zod.z.core.$ZodIssue): Problem[] {
  if (issue.code === "unrecognized_keys") {
    const known =
      issue.path.length === 0
        ? TOP_LEVEL_KEYS
        : issue.path[0] === "peers"
          ? PEER_KEYS
          : issue.path[0] === "mirror"
            ? MIRROR_KEYS
            : REGISTRY_KEYS;
    return issue.keys.map((key) => ({
      path: [...issue.path, key],
      at: "key",
      message: "unknown key",
      hint: `known keys here: ${known.join(", ")}`,
    }));
  }
  if (issue.code === "invalid_key") {
    return [
      {
        path: issue.path,
        at: "key",
        message: "not a registry host[:port]",
        hint: "name the registry as image references do, e.g. ghcr.io or localhost:5000 (no scheme, no path)",
      },
    ];
  }
  const last = issue.path.findLast((segment) => typeof segment === "string");
  const hint =
    (typeof last === "string" ? KEY_HINTS[last] : undefined) ?? "see ferry's config reference";
  return [{ path: issue.path, at: "value", message: issue.message, hint }];
}

function toConfig(
  yaml: typeof Yaml,
  doc: Yaml.Document,
  lineCounter: Yaml.LineCounter,
  path: string,
  data: FerryConfigDocument,
): FerryConfig {
  const registries = new Map<string, RegistryConfig>();
  const firstKey = new Map<string, string>();
  const base = dirname(path);
  const file = (name: string | undefined) => (name === undefined ? undefined : resolve(base, name));
  for (const [key, entry] of Object.entries(data?.registries ?? {})) {
    const host = canonicalHost(key);
    const earlier = firstKey.get(host);
    if (earlier !== undefined) {
      const at = locate(yaml, doc, lineCounter, ["registries", key], "key");
      throw configInvalid(path, at, ["registries", key], `names the same registry as ${earlier}`, {
        hint: "merge the two entries into one",
      });
    }
    firstKey.set(host, key);
    registries.set(host, {
      key,
      mirrors: (entry?.mirrors ?? []).map(normalizeMirror),
      plainHttp: entry?.plainHttp,
      skipVerify: entry?.skipVerify ?? false,
      ca: file(entry?.ca),
      clientCert: file(entry?.clientCert),
      clientKey: file(entry?.clientKey),
      ...(entry?.timeoutSeconds === undefined ? {} : { timeoutSeconds: entry.timeoutSeconds }),
    });
  }
  const m = data?.mirror;
  const mirror: MirrorConfig | undefined =
    m?.namespaces === undefined ? undefined : { namespaces: m.namespaces };
  const p = data?.peers;
  if (p === undefined || p === null) return { path, registries, ...(mirror ? { mirror } : {}) };
  const peers: PeersConfig = {
    ...(p.members === undefined
      ? {}
      : { members: typeof p.members === "string" ? p.members : p.members.join(",") }),
    ...(p.keyFile === undefined ? {} : { keyFile: resolve(base, p.keyFile) }),
    ...(p.listen === undefined ? {} : { listen: p.listen }),
  };
  return { path, registries, peers, ...(mirror ? { mirror } : {}) };
}

/** "registries.docker.io.mirrors[0]" */
export function keyPath(path: readonly PropertyKey[]): string {
  return path
    .map((segment, i) =>
      typeof segment === "number" ? `[${segment}]` : `${i === 0 ? "" : "."}${String(segment)}`,
    )
    .join("");
}

export function configInvalid(
  file: string,
  at: Position | undefined,
  path: readonly PropertyKey[] | undefined,
  message: string,
  extra: { hint: string; more?: string[] },
): FerryError {
  const where = at === undefined ? file : `${file}:${at.line}:${at.col}`;
  const key = path === undefined ? undefined : keyPath(path);
  const more =
    extra.more !== undefined && extra.more.length > 0 ? ` (and ${extra.more.length} more)` : "";
  return new FerryError(
    "FERRY_CONFIG_INVALID",
    `config ${where}: ${key === undefined ? "" : `${key}: `}${message}${more}`,
    {
      hint: extra.hint,
      fields: { path: file, line: at?.line, column: at?.col, key, more: extra.more ?? [] },
    },
  );
}
