/**
 * The push notifications registries send, read into the images they name. Pure: bytes in,
 * references out. Only pushes of a tagged manifest name an image; everything else a sender
 * posts (blob uploads, pulls, deletes, pings, untagged children of an index) is counted as
 * ignored, so the sender still gets its 2xx.
 */
import { FerryError, isFerryError, oneOf } from "../observe/index.ts";
import { DEFAULT_DOMAIN, parseReference, type Reference } from "../reference/index.ts";

/** Where GitHub's container registry lives when the payload does not say. */
export const GITHUB_CONTAINER_REGISTRY = "ghcr.io";

/** An image a push notification names. */
export interface PushedImage {
  readonly ref: Reference;
  /** The manifest (or index) digest the sender reported, when it did. */
  readonly digest: string | undefined;
}

export interface ParsedPush {
  readonly images: readonly PushedImage[];
  /** Events that name no image: blob pushes, pulls, untagged manifests, other actions. */
  readonly ignored: number;
  /** Why events were ignored, for the log (at most a few). */
  readonly notes: readonly string[];
}

export interface ParseOptions {
  /** The registry's name for clients, overriding the Host a Distribution event reports. */
  readonly registryHost?: string | undefined;
  /** Lower-cased request headers (GitHub names its event in one). */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

type Json = Record<string, unknown>;
type Reader = (json: Json, options: ParseOptions, out: PushCollector) => void;

/** The one table of formats, each with its reader: a route names a key, and nothing falls through. */
const READERS = {
  distribution: (json, options, out) => readDistribution(json, options.registryHost, out),
  dockerhub: (json, _options, out) => readDockerHub(json, out),
  github: (json, options, out) => readGitHub(json, header(options.headers, "x-github-event"), out),
  harbor: (json, _options, out) => readHarbor(json, out),
} as const satisfies Record<string, Reader>;

export type WebhookKind = keyof typeof READERS;
/** The formats in the table's order, for routes, messages and help. */
export const WEBHOOK_KINDS = Object.keys(READERS) as readonly WebhookKind[];

const MANIFEST_TYPE = /manifest|index/i;

/** Parses a notification body; throws FERRY_INVALID_ARGUMENT (answered 400) when it is not one. */
export function parsePush(
  kind: WebhookKind,
  body: Uint8Array,
  options: ParseOptions = {},
): ParsedPush {
  const json = parseJson(body);
  const out = new PushCollector();
  READERS[kind](json, options, out);
  return out.result();
}

class PushCollector {
  readonly #images: PushedImage[] = [];
  readonly #notes: string[] = [];
  #ignored = 0;

  add(text: string, digest: unknown): void {
    let ref: Reference;
    try {
      ref = parseReference(text);
    } catch (err) {
      if (!isFerryError(err)) throw err;
      this.ignore(`not a reference: ${err.message}`);
      return;
    }
    this.#images.push({
      ref,
      digest: typeof digest === "string" && digest !== "" ? digest : undefined,
    });
  }

  ignore(note?: string): void {
    this.#ignored++;
    if (note !== undefined && this.#notes.length < 5) this.#notes.push(note);
  }

  result(): ParsedPush {
    return { images: this.#images, ignored: this.#ignored, notes: this.#notes };
  }
}

/** Distribution: `{"events":[{action, target:{mediaType, repository, tag, digest}, request:{host}}]}`. */
function readDistribution(json: Json, registryHost: string | undefined, out: PushCollector): void {
  const events = json["events"];
  if (!Array.isArray(events)) throw malformed("a Distribution envelope has an events list");
  for (const event of events) {
    if (!isObject(event) || event["action"] !== "push") {
      out.ignore();
      continue;
    }
    const target = objectAt(event, "target");
    const tag = stringAt(target, "tag");
    const repository = stringAt(target, "repository");
    const mediaType = stringAt(target, "mediaType") ?? "";
    if (tag === undefined || repository === undefined || !MANIFEST_TYPE.test(mediaType)) {
      out.ignore(); // a blob upload, or a manifest pushed by digest only
      continue;
    }
    const host = registryHost ?? stringAt(objectAt(event, "request"), "host");
    if (host === undefined) {
      out.ignore(`push of ${repository}:${tag} names no registry host (set the registry host)`);
      continue;
    }
    out.add(`${host}/${repository}:${tag}`, target?.["digest"]);
  }
}

/** Docker Hub: `{push_data:{tag}, repository:{repo_name}}`; the registry is always Docker Hub. */
function readDockerHub(json: Json, out: PushCollector): void {
  const tag = stringAt(objectAt(json, "push_data"), "tag");
  const name = stringAt(objectAt(json, "repository"), "repo_name");
  if (name === undefined) throw malformed("a Docker Hub webhook has repository.repo_name");
  if (tag === undefined) {
    out.ignore(`push to ${name} names no tag`);
    return;
  }
  out.add(`${DEFAULT_DOMAIN}/${name}:${tag}`, undefined);
}

/** GitHub `registry_package` (or `package`) with action "published" of a container package. */
function readGitHub(json: Json, event: string | undefined, out: PushCollector): void {
  if (event === "ping") return;
  const pkg = objectAt(json, "registry_package") ?? objectAt(json, "package");
  if (pkg === undefined || typeof json["action"] !== "string") {
    throw malformed("a GitHub package event has action and registry_package");
  }
  if (json["action"] !== "published") {
    out.ignore(`action "${String(json["action"])}"`);
    return;
  }
  const type = (stringAt(pkg, "package_type") ?? stringAt(pkg, "ecosystem") ?? "").toLowerCase();
  const version = objectAt(pkg, "package_version");
  const tag = objectAt(objectAt(version, "container_metadata"), "tag");
  if (type !== "container" && type !== "docker" && tag === undefined) {
    out.ignore(`a ${type || "non-container"} package`);
    return;
  }
  const name = stringAt(pkg, "name");
  const owner = stringAt(pkg, "namespace") ?? stringAt(objectAt(pkg, "owner"), "login");
  const tagName = stringAt(tag, "name");
  if (name === undefined || owner === undefined) {
    throw malformed("a GitHub package event has registry_package.name and namespace");
  }
  if (tagName === undefined) {
    out.ignore(`untagged version of ${owner}/${name}`);
    return;
  }
  const host = registryHostOf(stringAt(objectAt(pkg, "registry"), "url"));
  // GitHub logins keep their case; container names on ghcr.io are lower case.
  out.add(`${host}/${owner.toLowerCase()}/${name.toLowerCase()}:${tagName}`, tag?.["digest"]);
}

/** Harbor PUSH_ARTIFACT (default format) or harbor.artifact.pushed (CloudEvents). */
function readHarbor(json: Json, out: PushCollector): void {
  const type = stringAt(json, "type");
  const data = objectAt(json, "event_data") ?? objectAt(json, "data");
  if (type === undefined || data === undefined) {
    throw malformed("a Harbor webhook has type and event_data");
  }
  if (type !== "PUSH_ARTIFACT" && type !== "harbor.artifact.pushed") {
    out.ignore(`event ${type}`);
    return;
  }
  const resources = data["resources"];
  if (!Array.isArray(resources)) throw malformed("a Harbor push has event_data.resources");
  for (const resource of resources) {
    const url = isObject(resource) ? stringAt(resource, "resource_url") : undefined;
    const tag = isObject(resource) ? stringAt(resource, "tag") : undefined;
    if (url === undefined || tag === undefined) {
      out.ignore(url === undefined ? "resource without resource_url" : `untagged ${url}`);
      continue;
    }
    // resource_url is host/project/repo:tag; an untagged push carries @digest instead.
    out.add(url.includes("@") ? url.slice(0, url.indexOf("@")) : url, resource["digest"]);
  }
}

function registryHostOf(url: string | undefined): string {
  if (url === undefined) return GITHUB_CONTAINER_REGISTRY;
  try {
    const host = new URL(url).host;
    return host === "" ? GITHUB_CONTAINER_REGISTRY : host;
  } catch {
    return GITHUB_CONTAINER_REGISTRY;
  }
}

function parseJson(body: Uint8Array): Json {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString("utf8"));
  } catch (err) {
    throw malformed(`the body is not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw malformed("the body is not a JSON object");
  return value;
}

function malformed(what: string): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", `not a push notification: ${what}`, {
    hint: `point the sender at the route for its format: /webhooks/${oneOf(WEBHOOK_KINDS)}`,
    fields: { status: 400 },
  });
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objectAt(json: Json | undefined, key: string): Json | undefined {
  const value = json?.[key];
  return isObject(value) ? value : undefined;
}

function stringAt(json: Json | undefined, key: string): string | undefined {
  const value = json?.[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function header(
  headers: Readonly<Record<string, string | string[] | undefined>> | undefined,
  name: string,
): string | undefined {
  const value = headers?.[name];
  return Array.isArray(value) ? value[0] : value;
}
