/**
 * Parsing and normalization as Docker does it (distribution/reference's
 * ParseNormalizedNamed plus TagNameOnly): the first path element is a registry
 * host only when it looks like one; otherwise the image is on Docker Hub.
 */
import { FerryError } from "../observe/index.ts";
import {
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
  LEGACY_DEFAULT_DOMAIN,
  NAME_MAX_LENGTH,
  OFFICIAL_REPOSITORY_PREFIX,
} from "./constants.ts";
import {
  digestProblem,
  domainProblem,
  HINTS,
  identifierProblem,
  type Problem,
  pathProblem,
  quote,
  tagProblem,
} from "./grammar.ts";
import type { Reference, Repository } from "./reference.ts";

const LOCALHOST = "localhost";

interface DomainSplit {
  readonly domain: string;
  readonly remainder: string;
  /** Whether the text itself named the registry host. */
  readonly explicit: boolean;
}

interface ParsedName extends Repository {
  readonly tag: string | undefined;
}

export function invalidReference(input: string, problem: Problem): FerryError {
  return new FerryError(
    "FERRY_INVALID_REFERENCE",
    `invalid reference ${quote(input)}: ${problem.reason}`,
    { hint: problem.hint, fields: { input, reason: problem.reason } },
  );
}

function check(input: string, problem: Problem | undefined): void {
  if (problem !== undefined) throw invalidReference(input, problem);
}

/** Docker's rule: a first element with ".", ":", uppercase, or "localhost" is a host. */
function looksLikeDomain(element: string): boolean {
  return (
    element === LOCALHOST ||
    element.includes(".") ||
    element.includes(":") ||
    element.toLowerCase() !== element
  );
}

function splitDomain(name: string): DomainSplit {
  const slash = name.indexOf("/");
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (looksLikeDomain(first)) {
      return {
        domain: first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first,
        remainder: name.slice(slash + 1),
        explicit: true,
      };
    }
  }
  return { domain: DEFAULT_DOMAIN, remainder: name, explicit: false };
}

function requireText(input: unknown): string {
  if (typeof input !== "string") {
    throw new FerryError("FERRY_INVALID_REFERENCE", "an image reference must be a string", {
      hint: HINTS.form,
      fields: { input: String(input) },
    });
  }
  if (input === "") check(input, { reason: "reference is empty", hint: HINTS.form });
  check(input, identifierProblem(input));
  return input;
}

/** Parses `[domain/]path[:tag]` and normalizes the Docker Hub forms. */
function parseName(input: string, nameAndTag: string): ParsedName {
  const split = splitDomain(nameAndTag);
  const colon = split.remainder.indexOf(":");
  const rawPath = colon < 0 ? split.remainder : split.remainder.slice(0, colon);
  const tag = colon < 0 ? undefined : split.remainder.slice(colon + 1);
  if (split.explicit) check(input, domainProblem(split.domain));
  check(input, pathProblem(rawPath));
  const path =
    split.domain === DEFAULT_DOMAIN && !rawPath.includes("/")
      ? OFFICIAL_REPOSITORY_PREFIX + rawPath
      : rawPath;
  const length = split.domain.length + 1 + path.length;
  if (length > NAME_MAX_LENGTH) {
    check(input, {
      reason: `name is longer than ${NAME_MAX_LENGTH} characters (${length} once normalized)`,
      hint: HINTS.length,
    });
  }
  return { domain: split.domain, path, tag };
}

/**
 * Parses an image reference and normalizes it: `postgres:16` becomes
 * docker.io/library/postgres:16, and a reference with neither tag nor digest
 * gets the tag "latest". Throws FERRY_INVALID_REFERENCE naming input and reason.
 */
export function parseReference(input: string): Reference {
  const text = requireText(input);
  const at = text.indexOf("@");
  const nameAndTag = at < 0 ? text : text.slice(0, at);
  const digest = at < 0 ? undefined : text.slice(at + 1);
  const { domain, path, tag } = parseName(text, nameAndTag);
  if (tag !== undefined) check(text, tagProblem(tag));
  if (digest !== undefined) check(text, digestProblem(digest));
  return Object.freeze({
    domain,
    path,
    tag: tag === undefined && digest === undefined ? DEFAULT_TAG : tag,
    digest,
  });
}

/** Parses a repository name that must carry no tag and no digest. */
export function parseRepository(input: string): Repository {
  const text = requireText(input);
  if (text.includes("@")) {
    check(text, { reason: "a repository name cannot include a digest", hint: HINTS.path });
  }
  const { domain, path, tag } = parseName(text, text);
  if (tag !== undefined) {
    check(text, { reason: "a repository name cannot include a tag", hint: HINTS.path });
  }
  return Object.freeze({ domain, path });
}

/** True when the text names no registry host, so it means Docker Hub implicitly. */
export function isUnqualified(input: string): boolean {
  const at = input.indexOf("@");
  return !splitDomain(at < 0 ? input : input.slice(0, at)).explicit;
}
