import { FerryError } from "../observe/index.ts";
import { redact, safeHost } from "./network-error.ts";

const REDIRECT_HINT =
  "the registry (or the storage it redirects to) is misconfigured; report it to the registry's operator";

/**
 * Where a redirect from `url` to `location` leads, checked: at most `max` hops from
 * `first` (the URL asked for), and only to http(s), so a registry cannot point ferry
 * at a local file or another scheme.
 */
export function redirectTarget(
  first: string,
  url: string,
  location: string,
  hop: number,
  max: number,
): URL {
  const host = safeHost(url);
  if (hop >= max) {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${host} redirected ${redact(first)} more than ${max} times (a redirect loop)`,
      { hint: REDIRECT_HINT, fields: { host, url: redact(first), maxRedirects: max } },
    );
  }
  let next: URL;
  try {
    next = new URL(location, url);
  } catch (cause) {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${host} redirected ${redact(url)} to an invalid URL`,
      {
        hint: REDIRECT_HINT,
        fields: { host },
        cause,
      },
    );
  }
  if (next.protocol !== "http:" && next.protocol !== "https:") {
    throw new FerryError(
      "FERRY_REGISTRY_ERROR",
      `${host} redirected ${redact(url)} to a ${next.protocol} URL; only http and https redirects are followed`,
      { hint: REDIRECT_HINT, fields: { host, scheme: next.protocol } },
    );
  }
  return next;
}

export function dropCredentials(h: Record<string, string>): Record<string, string> {
  const { authorization: _a, cookie: _c, ...rest } = h;
  return rest;
}
