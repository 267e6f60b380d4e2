/** Turning references back into text, and deriving new references from them. */
import { FerryError } from "../observe/index.ts";
import {
  DEFAULT_DOMAIN,
  OFFICIAL_REPOSITORY_PREFIX,
  PULLABLE_DIGEST_ALGORITHM,
} from "./constants.ts";
import { digestProblem, tagProblem } from "./grammar.ts";
import { invalidReference } from "./parse.ts";
import type { Reference } from "./reference.ts";

function suffix(ref: Reference): string {
  return (
    (ref.tag === undefined ? "" : `:${ref.tag}`) +
    (ref.digest === undefined ? "" : `@${ref.digest}`)
  );
}

/** "docker.io/library/postgres" */
export function repositoryName(ref: Pick<Reference, "domain" | "path">): string {
  return `${ref.domain}/${ref.path}`;
}

/** Fully qualified: "docker.io/library/postgres:16", "host/x:tag@sha256:…". */
export function formatReference(ref: Reference): string {
  return repositoryName(ref) + suffix(ref);
}

/** Docker's short display form: "postgres:16", "user/app:latest"; other registries unchanged. */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return formatReference(ref);
  const official = ref.path.startsWith(OFFICIAL_REPOSITORY_PREFIX)
    ? ref.path.slice(OFFICIAL_REPOSITORY_PREFIX.length)
    : undefined;
  const path = official !== undefined && !official.includes("/") ? official : ref.path;
  return path + suffix(ref);
}

/** The same repository at another tag; a digest, if any, is kept. */
export function withTag(ref: Reference, tag: string): Reference {
  const problem = tagProblem(tag);
  if (problem !== undefined) throw invalidReference(`${repositoryName(ref)}:${tag}`, problem);
  return Object.freeze({ domain: ref.domain, path: ref.path, tag, digest: ref.digest });
}

/** The same repository pinned to a digest; a tag, if any, is kept. */
export function withDigest(ref: Reference, digest: string): Reference {
  const problem = digestProblem(digest);
  if (problem !== undefined) throw invalidReference(`${repositoryName(ref)}@${digest}`, problem);
  return Object.freeze({ domain: ref.domain, path: ref.path, tag: ref.tag, digest });
}

/** Returns ref when ferry can pull by its digest (sha256 or none); throws FERRY_UNSUPPORTED_DIGEST otherwise. */
export function requirePullable(ref: Reference): Reference {
  if (ref.digest === undefined) return ref;
  const algorithm = ref.digest.slice(0, ref.digest.indexOf(":"));
  if (algorithm === PULLABLE_DIGEST_ALGORITHM) return ref;
  throw new FerryError(
    "FERRY_UNSUPPORTED_DIGEST",
    `${formatReference(ref)} is pinned by a ${algorithm} digest; only ${PULLABLE_DIGEST_ALGORITHM} is supported for pulling`,
    {
      hint: `pin the image by its ${PULLABLE_DIGEST_ALGORITHM} digest instead`,
      fields: { reference: formatReference(ref), algorithm },
    },
  );
}
