/**
 * The schema of ferry's config file. zod is loaded only when a config file
 * exists (its import costs ~80 ms of start-up), hence require() on first use.
 */
import { createRequire } from "node:module";
import type * as Zod from "zod";
import { isHostKey } from "./registry-host.ts";

export const TOP_LEVEL_KEYS = ["registries", "peers", "mirror"] as const;
/** Node-to-node sharing (docs/peers.md): what the --peers, --peer-key-file, --peer-listen flags give. */
export const PEER_KEYS = ["members", "keyFile", "listen"] as const;
/** `ferry mirror`'s settings (README, Registry mirror). */
export const MIRROR_KEYS = ["namespaces"] as const;
export const REGISTRY_KEYS = [
  "mirrors",
  "plainHttp",
  "skipVerify",
  "ca",
  "clientCert",
  "clientKey",
  "timeoutSeconds",
] as const;

/** Hints by the last key of an issue's path. */
export const KEY_HINTS: Readonly<Record<string, string>> = {
  registries: "registries maps a registry host (as in image references) to its settings",
  mirrors: "mirrors is a list of http:// or https:// URLs, e.g. https://mirror.example",
  plainHttp: "plainHttp is true or false",
  skipVerify: "skipVerify is true or false",
  ca: "ca is the path of a PEM file of CA certificates (relative to the config file)",
  clientCert: "clientCert and clientKey are paths of PEM files, given together",
  clientKey: "clientCert and clientKey are paths of PEM files, given together",
  timeoutSeconds:
    "timeoutSeconds is a whole number of seconds, at least 1: how long a manifest or blob may go without progress (ferry pull --timeout overrides it)",
  peers: "peers has members, keyFile and listen (docs/peers.md)",
  members:
    "members is a list of peer listeners as HOST:PORT, or kubernetes (kubernetes:SERVICE) for a Service's endpoints",
  keyFile: "keyFile is the path of the fleet's shared key (relative to the config file)",
  listen: "listen is HOST:PORT, the address this node serves its peers on",
  mirror: "mirror has namespaces (README, Registry mirror)",
  namespaces:
    "namespaces is a list of registries (HOST or HOST:PORT) ferry mirror serves besides its upstream, or * for any",
};

const require = createRequire(import.meta.url);

function buildSchema(z: typeof Zod.z) {
  const mirror = z.string({ error: "expected a URL" }).superRefine((text, ctx) => {
    const problem = mirrorProblem(text);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
  const file = z.string({ error: "expected a file path" }).min(1, "empty file path");
  const flag = z.boolean({ error: "expected true or false" });
  const registry = z
    .strictObject({
      mirrors: z.array(mirror, { error: "expected a list of URLs" }).optional(),
      plainHttp: flag.optional(),
      skipVerify: flag.optional(),
      ca: file.optional(),
      clientCert: file.optional(),
      clientKey: file.optional(),
      timeoutSeconds: z
        .number({ error: "expected a whole number of seconds" })
        .int("expected a whole number of seconds")
        .min(1, "must be at least 1")
        .optional(),
    })
    .superRefine((value, ctx) => {
      if ((value.clientCert === undefined) === (value.clientKey === undefined)) return;
      const missing = value.clientCert === undefined ? "clientCert" : "clientKey";
      const given = missing === "clientCert" ? "clientKey" : "clientCert";
      ctx.addIssue({
        code: "custom",
        path: [given],
        message: `${given} without ${missing}: mTLS needs both`,
      });
    })
    .nullish();
  const host = z.string().refine(isHostKey, "not a registry host[:port]");
  const member = z.string({ error: "expected HOST:PORT" }).min(1, "empty member");
  const peers = z
    .strictObject({
      members: z
        .union([member, z.array(member).min(1, "no member listed")], {
          error: "expected a list of HOST:PORT, or kubernetes",
        })
        .optional(),
      keyFile: file.optional(),
      listen: z.string({ error: "expected HOST:PORT" }).min(1, "empty address").optional(),
    })
    .nullish();
  const mirrorSettings = z
    .strictObject({
      namespaces: z
        .array(z.string({ error: "expected HOST[:PORT] or *" }).min(1, "empty entry"), {
          error: "expected a list of registries",
        })
        .optional(),
    })
    .nullish();
  return z
    .strictObject(
      { registries: z.record(host, registry).nullish(), peers, mirror: mirrorSettings },
      { error: "expected a mapping" },
    )
    .nullish();
}

export type FerryConfigDocument = Zod.z.output<ReturnType<typeof buildSchema>>;

let schema: ReturnType<typeof buildSchema> | undefined;

export function ferryConfigSchema(): ReturnType<typeof buildSchema> {
  schema ??= buildSchema((require("zod") as typeof Zod).z);
  return schema;
}

/** Why a mirror URL is unusable, or undefined. */
export function mirrorProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "not a URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return "not an http:// or https:// URL";
  if (url.username !== "" || url.password !== "") {
    return "must not hold credentials (log in to the mirror's host instead)";
  }
  if (url.search !== "" || url.hash !== "") return "must not have a query or fragment";
  return undefined;
}

/** A mirror URL as ferry uses it: parsed, without a trailing slash. */
export function normalizeMirror(text: string): string {
  return new URL(text).href.replace(/\/+$/, "");
}
