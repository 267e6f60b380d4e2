/**
 * The built front end (dist/web: index.html and assets/NAME-HASH.ext), read into memory once:
 * a few hundred KiB. Only names found in the listing are served, so no request path ever
 * reaches the filesystem (no traversal).
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { embeddedAsset, embeddedAssetKeys } from "../observe/index.ts";

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  /** Hashed names never change content; index.html must be revalidated. */
  readonly cacheControl: string;
  /** The body gzipped, for clients that accept it (text assets only). */
  readonly gzipped?: Buffer;
}

export interface AssetSet {
  readonly index: Asset;
  /** By name under assets/. */
  readonly files: ReadonlyMap<string, Asset>;
}

/**
 * Where `npm run build:web` writes the bundle (dist/web), seen from this file in the sources
 * (src/web/) and from the CLI bundle's chunks (dist/cli/), in that order.
 */
export const DEFAULT_ASSETS_DIRS: readonly string[] = [
  fileURLToPath(new URL("../../dist/web/", import.meta.url)),
  fileURLToPath(new URL("../web/", import.meta.url)),
];

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** Hashed names never change content. */
const IMMUTABLE = "public, max-age=31536000, immutable";

/** A safe asset name: one path segment, no dot-files. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export function contentTypeOf(name: string): string {
  return TYPES[path.extname(name).toLowerCase()] ?? "application/octet-stream";
}

export function isAssetName(name: string): boolean {
  return ASSET_NAME.test(name) && !name.includes("..");
}

/** The bundle in the first of `dirs` that holds one, or undefined when none was built. */
export async function loadAssets(dirs: readonly string[]): Promise<AssetSet | undefined> {
  for (const dir of dirs) {
    const set = await loadAssetsFrom(dir);
    if (set !== undefined) return set;
  }
  return undefined;
}

/** The bundle built into the single executable (node:sea assets under web/), else as loadAssets(DEFAULT_ASSETS_DIRS). */
export async function loadDefaultAssets(): Promise<AssetSet | undefined> {
  const index = embeddedAsset("web/index.html");
  if (index === undefined) return loadAssets(DEFAULT_ASSETS_DIRS);
  const files = new Map<string, Asset>();
  for (const key of embeddedAssetKeys("web/assets/") ?? []) {
    const name = key.slice("web/assets/".length);
    const body = embeddedAsset(key);
    if (isAssetName(name) && body !== undefined) files.set(name, asset(body, name, IMMUTABLE));
  }
  return { index: asset(index, "index.html", "no-cache"), files };
}

/** The bundle in `dir`, or undefined when it has not been built there (no index.html). */
async function loadAssetsFrom(dir: string): Promise<AssetSet | undefined> {
  let indexBody: Buffer;
  try {
    indexBody = await readFile(path.join(dir, "index.html"));
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return undefined;
    throw err;
  }
  const files = new Map<string, Asset>();
  const assetsDir = path.join(dir, "assets");
  const names = await readdir(assetsDir).catch(() => [] as string[]);
  for (const name of names) {
    if (!isAssetName(name)) continue;
    const body = await readFile(path.join(assetsDir, name));
    files.set(name, asset(body, name, IMMUTABLE));
  }
  return { index: asset(indexBody, "index.html", "no-cache"), files };
}

/** Text compresses to about a third; compressing once at load beats doing it per request. */
const COMPRESSIBLE = /^(text\/|application\/json|image\/svg)/;

function asset(body: Buffer, name: string, cacheControl: string): Asset {
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
  const type = contentTypeOf(name);
  const gzipped =
    COMPRESSIBLE.test(type) && body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined;
  return {
    body,
    type,
    etag,
    cacheControl,
    ...(gzipped !== undefined && gzipped.length < body.length ? { gzipped } : {}),
  };
}
