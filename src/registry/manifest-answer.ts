// A manifest answer's body: bounded, then checked against the digest it was asked by and the one the registry announced.
import { digestOf, isDigest } from "../digest/index.ts";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { Repository } from "./client.ts";
import type { Deadline } from "./deadline.ts";
import { header, type HttpResponse, readBytes } from "./transport.ts";

/** Manifests larger than this are refused (containerd uses the same bound) so a server cannot exhaust memory. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
}

/** A manifest already held and verified (a store's copy): an answer equal to it needs no hashing. */
export interface KnownManifest {
  readonly digest: string;
  readonly bytes: Uint8Array;
}

/** What a 200 answer to a manifest GET is read against. */
export interface ManifestAsked {
  readonly repo: Repository;
  /** The tag or digest asked for. */
  readonly reference: string;
  /** The host that answered (a mirror or the registry), for messages. */
  readonly servedBy: string;
  readonly known: Promise<KnownManifest | undefined> | undefined;
  /** Told of the bytes received, as progress. */
  readonly deadline: Deadline;
}

/** The manifest in a 200 answer: at most MAX_MANIFEST_BYTES, its digest the one asked by and the one announced. */
export async function readManifest(
  res: HttpResponse,
  asked: ManifestAsked,
): Promise<FetchedManifest> {
  const { repo, reference, servedBy, known, deadline } = asked;
  if (Number(header(res, "content-length") ?? "0") > MAX_MANIFEST_BYTES) {
    res.body.destroy();
    throw tooLarge(repo, reference);
  }
  const bytes = await readBytes(res, MAX_MANIFEST_BYTES, (size) => deadline.progress(size)).catch(
    (err: unknown) => {
      // readBytes refuses a long body naming the limit; a broken, cancelled or malformed
      // response keeps its own error.
      const long = isFerryError(err, "FERRY_REGISTRY_ERROR") && err.fields["limit"] !== undefined;
      throw long ? tooLarge(repo, reference) : err;
    },
  );
  const held = await known;
  const digest =
    held !== undefined && Buffer.compare(bytes, held.bytes) === 0 ? held.digest : digestOf(bytes);
  const claimed = header(res, "docker-content-digest");
  if (isDigest(reference) && reference !== digest)
    throw manifestMismatch(repo, servedBy, reference, digest);
  if (claimed?.startsWith("sha256:") && claimed !== digest)
    throw manifestMismatch(repo, servedBy, claimed, digest);
  const contentType = header(res, "content-type")?.split(";")[0]?.trim() ?? "";
  return { bytes, mediaType: contentType, digest };
}

function tooLarge(repo: Repository, reference: string): FerryError {
  return new FerryError(
    "FERRY_INVALID_MANIFEST",
    `manifest ${repo.domain}/${repo.path}@${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`,
    {
      hint: "this is not a normal image manifest; check the reference",
    },
  );
}

function manifestMismatch(
  repo: Repository,
  servedBy: string,
  expected: string,
  actual: string,
): FerryError {
  return new FerryError(
    "FERRY_DIGEST_MISMATCH",
    `manifest of ${repo.domain}/${repo.path} served by ${servedBy} does not match its digest ${expected} (got ${actual})`,
    {
      hint: "the registry or something between it and you served a different manifest than it announced; nothing was stored",
      fields: { expected, actual },
    },
  );
}
