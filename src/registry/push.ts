import { digestOf } from "../digest/index.ts";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import type { RegistryClient, Repository } from "./client.ts";
import { errorFromResponse, PROTOCOL_HINT, type RequestContext } from "./errors.ts";
import { blobPath, manifestPath, uploadPath } from "./paths.ts";
import { header, type HttpRequest, type HttpResponse } from "./transport.ts";

// The write side of the distribution API, as functions over RegistryClient.request
// (which sends to the registry itself, never a mirror, with auth for any scope).

/** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size, each read into memory once. */
export const CHUNK_SIZE = 16 * 1024 * 1024;

/** Reads bytes [start, end) of the blob being uploaded: what an upload takes, not a reader (a copy fills it with oci's readRange). */
export type ReadRange = (start: number, end: number) => Promise<Buffer>;

export interface WriteOptions {
  signal?: AbortSignal | undefined;
}

export interface UploadOptions extends WriteOptions {
  /** An upload session already opened (the Location of a mount answered 202). */
  session?: string | undefined;
  /** Bytes the registry has accepted so far. */
  onProgress?: (sent: number) => void;
}

const OCTETS = { "content-type": "application/octet-stream" };

export type MountResult = { mounted: true } | { mounted: false; session: string };

/** The token scope of a push: push and pull on `repo`, plus pull on the repository a mount reads from. */
export function pushScope(repo: Repository, mountFrom?: string): string {
  const own = `repository:${repo.path}:push,pull`;
  return mountFrom === undefined ? own : `${own} repository:${mountFrom}:pull`;
}

/** Byte ranges [start, end) of a chunked upload, in order. */
export function planChunks(
  size: number,
  chunkSize = CHUNK_SIZE,
): Array<{ start: number; end: number }> {
  const chunks: Array<{ start: number; end: number }> = [];
  for (let start = 0; start < size; start += chunkSize)
    chunks.push({ start, end: Math.min(size, start + chunkSize) });
  return chunks;
}

/** An upload `Location` (relative or absolute) as an absolute URL, its query (the session state) kept. */
export function resolveLocation(base: string, location: string): string {
  return new URL(location, `${base}/`).href;
}

/** Adds `digest=` to an upload URL without touching the query it already has. */
export function withDigestParam(url: string, digest: string): string {
  const hash = url.indexOf("#");
  const bare = hash === -1 ? url : url.slice(0, hash);
  const sep = bare.includes("?") ? (bare.endsWith("?") || bare.endsWith("&") ? "" : "&") : "?";
  return `${bare}${sep}digest=${encodeURIComponent(digest)}`;
}

/** HEAD /v2/<name>/blobs/<digest>: does the repository hold the blob (at its size)? */
export async function blobExists(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  options: WriteOptions = {},
): Promise<boolean> {
  const ctx = blobContext(repo, desc.digest);
  const res = await call(client, repo, ctx, pushScope(repo), options, (base, headers) => ({
    method: "HEAD",
    url: `${base}${blobPath(repo.path, desc.digest)}`,
    headers,
  }));
  if (res.status === 200 || res.status === 404) {
    res.body.resume();
    const length = header(res, "content-length");
    return res.status === 200 && (length === undefined || Number(length) === desc.size);
  }
  throw await failure(res, ctx, repo);
}

/**
 * POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>: links a blob that
 * another repository of the same registry holds. 201 is done; 202 means the
 * registry did not mount it and opened an upload session instead.
 */
export async function mountBlob(
  client: RegistryClient,
  repo: Repository,
  digest: string,
  from: string,
  options: WriteOptions = {},
): Promise<MountResult> {
  const ctx = blobContext(repo, digest);
  const query = new URLSearchParams({ mount: digest, from });
  const res = await call(client, repo, ctx, pushScope(repo, from), options, (base, headers) => ({
    method: "POST",
    url: `${base}${uploadPath(repo.path)}?${query}`,
    headers,
    body: "",
  }));
  if (res.status === 201) {
    res.body.resume();
    return { mounted: true };
  }
  if (res.status === 202) return { mounted: false, session: sessionOf(res, repo) };
  throw await failure(res, ctx, repo);
}

/**
 * Uploads a blob: one PUT for blobs up to CHUNK_SIZE, else PATCH chunks then a
 * closing PUT, each request sent to the `Location` the previous answer gave.
 * The registry checks the digest; ferry checks the one it answers with.
 */
export async function uploadBlob(
  client: RegistryClient,
  repo: Repository,
  desc: Descriptor,
  read: ReadRange,
  options: UploadOptions = {},
): Promise<void> {
  const ctx = blobContext(repo, desc.digest);
  const scope = pushScope(repo);
  const send = (
    method: HttpRequest["method"],
    location: string,
    body: Buffer | string,
    extra: Record<string, string> = {},
  ) =>
    call(client, repo, ctx, scope, options, (base, headers) => {
      const url = resolveLocation(base, location);
      // Auth belongs to the registry: an upload Location elsewhere gets none.
      const own = new URL(url).origin === new URL(base).origin;
      return { method, url, headers: { ...(own ? headers : {}), ...extra }, body };
    });
  let location = options.session ?? (await startUpload(client, repo, ctx, scope, options));
  let res: HttpResponse;
  if (desc.size <= CHUNK_SIZE) {
    const body = await read(0, desc.size);
    res = await send("PUT", withDigestParam(location, desc.digest), body, OCTETS);
  } else {
    for (const { start, end } of planChunks(desc.size)) {
      const body = await read(start, end);
      res = await send("PATCH", location, body, {
        ...OCTETS,
        "content-range": `${start}-${end - 1}`,
      });
      if (res.status !== 202) throw await failure(res, ctx, repo);
      const range = header(res, "range");
      if (range !== undefined && !new RegExp(`^(bytes=)?0-${end - 1}$`).test(range)) {
        throw new FerryError(
          "FERRY_REGISTRY_ERROR",
          `registry ${repo.domain} holds ${range} of the upload of ${desc.digest}, expected 0-${end - 1}`,
          {
            hint: PROTOCOL_HINT,
            fields: { host: repo.domain, repository: repo.path, digest: desc.digest, range },
          },
        );
      }
      location = sessionOf(res, repo);
      options.onProgress?.(end);
    }
    res = await send("PUT", withDigestParam(location, desc.digest), "");
  }
  if (res.status !== 201 && res.status !== 204) throw await failure(res, ctx, repo);
  res.body.resume();
  const answered = header(res, "docker-content-digest");
  if (answered !== undefined && answered !== desc.digest) {
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `registry ${repo.domain} stored the upload of ${desc.digest} as ${answered}`,
      {
        hint: "the registry stored other bytes than ferry sent (or changed them); report it to the registry's operator",
        fields: { expected: desc.digest, actual: answered, host: repo.domain },
      },
    );
  }
  options.onProgress?.(desc.size);
}

/** PUT /v2/<name>/manifests/<reference> with these exact bytes; returns their digest, checked against the registry's. */
export async function putManifest(
  client: RegistryClient,
  repo: Repository,
  reference: string,
  mediaType: string,
  bytes: Buffer,
  options: WriteOptions = {},
): Promise<string> {
  const digest = digestOf(bytes);
  const ctx: RequestContext = {
    host: repo.domain,
    repository: repo.path,
    what: "manifest",
    reference,
  };
  const res = await call(client, repo, ctx, pushScope(repo), options, (base, headers) => ({
    method: "PUT",
    url: `${base}${manifestPath(repo.path, reference)}`,
    headers: { ...headers, "content-type": mediaType },
    body: bytes,
  }));
  if (res.status !== 201 && res.status !== 200 && res.status !== 204)
    throw await failure(res, ctx, repo);
  res.body.resume();
  const answered = header(res, "docker-content-digest");
  if (answered !== undefined && answered !== digest) {
    throw new FerryError(
      "FERRY_DIGEST_MISMATCH",
      `registry ${repo.domain} stored the manifest for ${repo.path}:${reference} as ${answered}, not ${digest}`,
      {
        hint: "the registry rewrote the manifest; its digest would differ from the source's",
        fields: { expected: digest, actual: answered, host: repo.domain },
      },
    );
  }
  return digest;
}

async function startUpload(
  client: RegistryClient,
  repo: Repository,
  ctx: RequestContext,
  scope: string,
  options: WriteOptions,
): Promise<string> {
  const res = await call(client, repo, ctx, scope, options, (base, headers) => ({
    method: "POST",
    url: `${base}${uploadPath(repo.path)}`,
    headers,
    body: "",
  }));
  if (res.status !== 202) throw await failure(res, ctx, repo);
  return sessionOf(res, repo);
}

function sessionOf(res: HttpResponse, repo: Repository): string {
  res.body.resume();
  const location = header(res, "location");
  if (location === undefined || location === "") {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `registry ${repo.domain} opened an upload without a Location header`,
      {
        hint: PROTOCOL_HINT,
        fields: { host: repo.domain, repository: repo.path, status: res.status },
      },
    );
  }
  return location;
}

function blobContext(repo: Repository, digest: string): RequestContext {
  return { host: repo.domain, repository: repo.path, what: "blob", digest };
}

async function call(
  client: RegistryClient,
  repo: Repository,
  ctx: RequestContext,
  scope: string,
  options: WriteOptions,
  build: (base: string, headers: Record<string, string>) => HttpRequest,
): Promise<HttpResponse> {
  try {
    return await client.request(repo, { scope, signal: options.signal, what: ctx.what }, build);
  } catch (err) {
    throw forPush(err, repo);
  }
}

async function failure(res: HttpResponse, ctx: RequestContext, repo: Repository): Promise<unknown> {
  return forPush(await errorFromResponse(res, ctx), repo);
}

/** The shared error wording speaks of pulling; a refused write says push. */
function forPush(err: unknown, repo: Repository): unknown {
  if (!isFerryError(err, "FERRY_DENIED")) return err;
  return new FerryError("FERRY_DENIED", `push to ${repo.domain}/${repo.path} denied`, {
    hint: "your credentials are valid but not allowed to push to this repository; ask its owner for push access, or log in as a user who has it",
    fields: err.fields,
    cause: err,
  });
}
