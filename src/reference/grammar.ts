/**
 * The reference grammar of distribution/reference, checked piece by piece so
 * that a rejection can say which piece is wrong and why. Each check returns a
 * Problem, or undefined when the piece is valid.
 */
import { DIGEST_HEX_LENGTHS, PULLABLE_DIGEST_ALGORITHM, TAG_MAX_LENGTH } from "./constants.ts";

export interface Problem {
  readonly reason: string;
  readonly hint: string;
}

export const HINTS = {
  form: 'write an image as [registry[:port]/]repository[:tag][@sha256:<digest>], e.g. "postgres:16" or "ghcr.io/org/app:1.2"',
  domain:
    'a registry host is a DNS name, an IPv4 address or a bracketed IPv6 address with an optional port, e.g. "registry.example.com", "localhost:5000" or "[::1]:5000"',
  path: 'repository path components are lowercase letters and digits joined by ".", "_", "__" or dashes, separated by single "/"',
  tag: 'a tag is 1 to 128 letters, digits, "_", "." or "-", starting with a letter, digit or "_"',
  digest: "pin an image by digest as name@sha256:<64 lowercase hex digits>",
  length: "a repository name (registry host and path) is at most 255 characters",
} as const;

const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_BODY = /^[a-fA-F0-9:]+$/;
const PORT = /^[0-9]+$/;
const ALGORITHM = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*$/;
const IDENTIFIER = /^[a-f0-9]{64}$/;
const SEPARATOR_RUN = /[._-]+/g;

/** Quotes user text for a message, cut short so a huge input cannot flood it. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text);
}

/** A bare 64-hex string is an image ID, never a repository name. */
export function identifierProblem(text: string): Problem | undefined {
  if (!IDENTIFIER.test(text)) return undefined;
  return {
    reason: "a 64-character hexadecimal string is an image ID, not a repository name",
    hint: "to pin a digest write name@sha256:<hex>, e.g. postgres@sha256:<hex>",
  };
}

export function domainProblem(domain: string): Problem | undefined {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith("[")) {
    const close = domain.indexOf("]");
    const body = domain.slice(1, close < 0 ? undefined : close);
    if (close < 0 || !IPV6_BODY.test(body)) {
      return { reason: `invalid IPv6 address ${quote(domain)}`, hint: HINTS.domain };
    }
    const rest = domain.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) {
        return { reason: `invalid registry host ${quote(domain)}`, hint: HINTS.domain };
      }
      port = rest.slice(1);
    }
  } else {
    const colon = domain.indexOf(":");
    if (colon >= 0) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
      if (port.includes(":")) {
        return {
          reason: `IPv6 address ${quote(domain)} must be in brackets`,
          hint: 'write IPv6 registries as "[::1]:5000/repository"',
        };
      }
    }
    if (host === "") return { reason: "empty registry host", hint: HINTS.domain };
    for (const component of host.split(".")) {
      if (component === "") {
        return { reason: `empty domain component in ${quote(host)}`, hint: HINTS.domain };
      }
      if (!DOMAIN_COMPONENT.test(component)) {
        return { reason: `invalid domain component ${quote(component)}`, hint: HINTS.domain };
      }
    }
  }
  if (port !== undefined && !PORT.test(port)) {
    return {
      reason: `invalid port ${quote(port)}`,
      hint: 'a port is decimal digits after the host, e.g. "localhost:5000"',
    };
  }
  return undefined;
}

/** The repository path: lowercase components separated by "/". */
export function pathProblem(path: string): Problem | undefined {
  if (path === "") return { reason: "repository name is empty", hint: HINTS.form };
  if (/[A-Z]/.test(path)) {
    return {
      reason: "repository name must be lowercase",
      hint: `repository names are lowercase: ${quote(path.toLowerCase())}`,
    };
  }
  for (const component of path.split("/")) {
    const problem = pathComponentProblem(component);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

export function pathComponentProblem(component: string): Problem | undefined {
  if (component === "") {
    return {
      reason: "empty path component",
      hint: 'remove the leading, trailing or doubled "/"; ' + HINTS.path,
    };
  }
  const bad = /[^a-z0-9._-]/.exec(component);
  if (bad !== null) {
    return {
      reason: `invalid character ${quote(bad[0])} in path component ${quote(component)}`,
      hint: HINTS.path,
    };
  }
  if (!/^[a-z0-9]/.test(component) || !/[a-z0-9]$/.test(component)) {
    return {
      reason: `path component ${quote(component)} must start and end with a lowercase letter or digit`,
      hint: HINTS.path,
    };
  }
  for (const [run] of component.matchAll(SEPARATOR_RUN)) {
    if (run !== "." && run !== "_" && run !== "__" && !/^-+$/.test(run)) {
      return {
        reason: `invalid separator ${quote(run)} in path component ${quote(component)}`,
        hint: HINTS.path,
      };
    }
  }
  return undefined;
}

export function tagProblem(tag: string): Problem | undefined {
  const why = tagFault(tag);
  return why === undefined
    ? undefined
    : { reason: `invalid tag ${quote(tag)}: ${why}`, hint: HINTS.tag };
}

function tagFault(tag: string): string | undefined {
  if (tag === "") return "a tag cannot be empty";
  if (tag.length > TAG_MAX_LENGTH) return `longer than ${TAG_MAX_LENGTH} characters`;
  const bad = /[^\w.-]/.exec(tag);
  if (bad !== null) return `invalid character ${quote(bad[0])}`;
  if (!/^\w/.test(tag)) return 'must start with a letter, digit or "_"';
  return undefined;
}

/** `algorithm:hex`; sha256 and sha512 are known, anything else is refused by name. */
export function digestProblem(digest: string): Problem | undefined {
  const colon = digest.indexOf(":");
  if (colon < 0) {
    return {
      reason: `invalid digest ${quote(digest)}: expected <algorithm>:<hex>`,
      hint: HINTS.digest,
    };
  }
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (!ALGORITHM.test(algorithm)) {
    return {
      reason: `invalid digest ${quote(digest)}: malformed algorithm ${quote(algorithm)}`,
      hint: HINTS.digest,
    };
  }
  const expected = DIGEST_HEX_LENGTHS.get(algorithm);
  if (expected === undefined) {
    const lower = DIGEST_HEX_LENGTHS.has(algorithm.toLowerCase());
    return {
      reason: lower
        ? `digest algorithm ${quote(algorithm)} must be lowercase`
        : `unsupported digest algorithm ${quote(algorithm)}: only ${PULLABLE_DIGEST_ALGORITHM} is supported`,
      hint: HINTS.digest,
    };
  }
  const bad = /[^0-9a-fA-F]/.exec(hex);
  if (bad !== null) {
    return {
      reason: `invalid ${algorithm} digest: ${quote(bad[0])} is not a hex digit`,
      hint: HINTS.digest,
    };
  }
  if (/[A-F]/.test(hex)) {
    return { reason: `invalid ${algorithm} digest: hex must be lowercase`, hint: HINTS.digest };
  }
  if (hex.length !== expected) {
    return {
      reason: `invalid ${algorithm} digest: expected ${expected} hex characters, got ${hex.length}`,
      hint: HINTS.digest,
    };
  }
  return undefined;
}
