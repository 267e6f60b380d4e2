import { isDigest } from "../digest/index.ts";
import { FerryError } from "../observe/index.ts";
import {
  isImageManifestMediaType,
  isIndexMediaType,
  MediaType,
  SCHEMA1_MEDIA_TYPES,
} from "./media-types.ts";

// Manifests are parsed on every pull, including the 150 ms "already up to date" path,
// so these schemas are small hand-written checks rather than a schema library (whose
// import alone costs ~80 ms of start-up).

export interface Platform {
  architecture: string;
  os: string;
  "os.version"?: string;
  "os.features"?: string[];
  variant?: string;
  features?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** A schema violation, with the JSON path where it was found. */
class SchemaError extends Error {}

type Json = Record<string, unknown>;

function object(v: unknown, path: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new SchemaError(`${path}: expected an object`);
  return v as Json;
}
function string(v: unknown, path: string): string {
  if (typeof v !== "string") throw new SchemaError(`${path}: expected a string`);
  return v;
}
function optional<T>(
  v: unknown,
  path: string,
  check: (v: unknown, path: string) => T,
): T | undefined {
  return v === undefined ? undefined : check(v, path);
}
function strings(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) throw new SchemaError(`${path}: expected an array`);
  return v.map((x, i) => string(x, `${path}[${i}]`));
}
function stringMap(v: unknown, path: string): Record<string, string> {
  const o = object(v, path);
  for (const [k, x] of Object.entries(o)) string(x, `${path}.${k}`);
  return o as Record<string, string>;
}
function schemaVersion2(v: unknown, path: string): 2 {
  if (v !== 2) throw new SchemaError(`${path}: expected 2`);
  return 2;
}

export function parsePlatformObject(v: unknown, path = "platform"): Platform {
  const o = object(v, path);
  const p: Platform = {
    architecture: string(o.architecture, `${path}.architecture`),
    os: string(o.os, `${path}.os`),
  };
  const variant = optional(o.variant, `${path}.variant`, string);
  if (variant !== undefined) p.variant = variant;
  const osVersion = optional(o["os.version"], `${path}.os.version`, string);
  if (osVersion !== undefined) p["os.version"] = osVersion;
  const osFeatures = optional(o["os.features"], `${path}.os.features`, strings);
  if (osFeatures !== undefined) p["os.features"] = osFeatures;
  const features = optional(o.features, `${path}.features`, strings);
  if (features !== undefined) p.features = features;
  return p;
}

export function parseDescriptor(v: unknown, path = "descriptor"): Descriptor {
  const o = object(v, path);
  const digest = string(o.digest, `${path}.digest`);
  if (!isDigest(digest)) throw new SchemaError(`${path}.digest: not a sha256 digest`);
  const size = o.size;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new SchemaError(`${path}.size: expected a non-negative integer`);
  }
  const d: Descriptor = { mediaType: string(o.mediaType, `${path}.mediaType`), digest, size };
  const urls = optional(o.urls, `${path}.urls`, strings);
  if (urls !== undefined) d.urls = urls;
  const annotations = optional(o.annotations, `${path}.annotations`, stringMap);
  if (annotations !== undefined) d.annotations = annotations;
  const platform = optional(o.platform, `${path}.platform`, parsePlatformObject);
  if (platform !== undefined) d.platform = platform;
  const artifactType = optional(o.artifactType, `${path}.artifactType`, string);
  if (artifactType !== undefined) d.artifactType = artifactType;
  return d;
}

function descriptors(v: unknown, path: string): Descriptor[] {
  if (!Array.isArray(v)) throw new SchemaError(`${path}: expected an array`);
  return v.map((x, i) => parseDescriptor(x, `${path}[${i}]`));
}

function imageManifest(o: Json): ImageManifest {
  const m: ImageManifest = {
    schemaVersion: schemaVersion2(o.schemaVersion, "schemaVersion"),
    config: parseDescriptor(o.config, "config"),
    layers: descriptors(o.layers, "layers"),
  };
  const mediaType = optional(o.mediaType, "mediaType", string);
  if (mediaType !== undefined) m.mediaType = mediaType;
  const artifactType = optional(o.artifactType, "artifactType", string);
  if (artifactType !== undefined) m.artifactType = artifactType;
  const subject = optional(o.subject, "subject", parseDescriptor);
  if (subject !== undefined) m.subject = subject;
  const annotations = optional(o.annotations, "annotations", stringMap);
  if (annotations !== undefined) m.annotations = annotations;
  return m;
}

function imageIndex(o: Json): ImageIndex {
  const i: ImageIndex = {
    schemaVersion: schemaVersion2(o.schemaVersion, "schemaVersion"),
    manifests: descriptors(o.manifests, "manifests"),
  };
  const mediaType = optional(o.mediaType, "mediaType", string);
  if (mediaType !== undefined) i.mediaType = mediaType;
  const annotations = optional(o.annotations, "annotations", stringMap);
  if (annotations !== undefined) i.annotations = annotations;
  return i;
}

/** The media type a manifest document declares ("" when none, or when it is no JSON object). */
export function declaredMediaType(bytes: Uint8Array): string {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString("utf8")) as { mediaType?: unknown } | null;
    return typeof doc?.mediaType === "string" ? doc.mediaType : "";
  } catch {
    return "";
  }
}

export type ParsedManifest =
  | { kind: "index"; mediaType: string; index: ImageIndex }
  | { kind: "image"; mediaType: string; manifest: ImageManifest };

/**
 * Parses manifest bytes. The media type comes from the document when present,
 * else from the HTTP Content-Type; they must agree when both are given.
 */
export function parseManifest(bytes: Uint8Array, contentType?: string): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (cause) {
    throw invalid("it is not valid JSON", cause);
  }
  if (typeof json !== "object" || json === null) throw invalid("it is not a JSON object");
  const declared = (json as { mediaType?: unknown }).mediaType;
  const schemaVersion = (json as { schemaVersion?: unknown }).schemaVersion;
  const headerType = contentType?.split(";")[0]?.trim();
  if (
    schemaVersion === 1 ||
    (typeof declared === "string" && SCHEMA1_MEDIA_TYPES.includes(declared)) ||
    (headerType !== undefined && SCHEMA1_MEDIA_TYPES.includes(headerType))
  ) {
    throw new FerryError(
      "FERRY_UNSUPPORTED_MANIFEST",
      "the registry returned a Docker schema 1 manifest, which is deprecated and not supported",
      {
        hint: "re-push the image with a current client (docker, skopeo, buildah) so it gets a schema 2 or OCI manifest",
      },
    );
  }
  let mediaType = typeof declared === "string" ? declared : headerType;
  if (mediaType === undefined || mediaType === "application/json" || mediaType === "") {
    // OCI allows omitting mediaType: infer from shape.
    mediaType = Array.isArray((json as { manifests?: unknown }).manifests)
      ? MediaType.ociIndex
      : MediaType.ociManifest;
  }
  try {
    if (isIndexMediaType(mediaType))
      return { kind: "index", mediaType, index: imageIndex(json as Json) };
    if (isImageManifestMediaType(mediaType)) {
      return { kind: "image", mediaType, manifest: imageManifest(json as Json) };
    }
  } catch (err) {
    if (err instanceof SchemaError) throw invalid(err.message);
    throw err;
  }
  throw new FerryError(
    "FERRY_UNSUPPORTED_MANIFEST",
    `unsupported manifest media type "${mediaType}"`,
    { hint: "ferry pulls OCI and Docker schema 2 images and indexes", fields: { mediaType } },
  );
}

function invalid(reason: string, cause?: unknown): FerryError {
  return new FerryError("FERRY_INVALID_MANIFEST", `invalid manifest: ${reason}`, {
    hint: "the registry returned a malformed manifest; check the image was pushed correctly",
    cause,
  });
}
