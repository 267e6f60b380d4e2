import { FerryError } from "../observe/index.ts";
import type { TlsSettings } from "./endpoint.ts";
import { redact, safeHost } from "./network-error.ts";

/** The statuses that redirect (the Fetch standard's list); 300, 304 and 305 are answers. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 5;

/** What a redirect may change in a request. */
export interface Redirectable {
  readonly method?: string | undefined;
  readonly url: string;
  /** Lower-cased names, so credentials are found whatever case the caller wrote. */
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer | undefined;
  readonly tls?: TlsSettings | undefined;
}

/** A response that redirects: its status and where to. */
export interface Redirection {
  readonly status: number;
  readonly location: string;
}

/** The redirection a response head makes, or undefined when it is an answer. */
export function redirection(status: number, location: string | undefined): Redirection | undefined {
  return REDIRECTS.has(status) && location !== undefined && location !== ""
    ? { status, location }
    : undefined;
}

/**
 * The redirect policy of every registry request, as a wrapper of `send`: redirects are
 * followed here, not by the HTTP layer, so that credentials (Authorization, Cookie, a
 * client certificate) never travel to an origin other than the one they were meant for;
 * a 303 becomes a GET; at most `max` hops (default 5). `redirected(answer)` says whether an
 * answer redirects (having let its body go) or is the one to return.
 */
export function followRedirects<R extends Redirectable, A>(
  send: (req: R) => Promise<A>,
  redirected: (answer: A) => Redirection | undefined,
  max: number = DEFAULT_MAX_REDIRECTS,
): (req: R) => Promise<A> {
  return async (first) => {
    let req = first;
    for (let hop = 0; ; hop++) {
      const answer = await send(req);
      const redirect = redirected(answer);
      if (redirect === undefined) return answer;
      const next = redirectTarget(first.url, req.url, redirect.location, hop, max);
      const sameOrigin = next.origin === new URL(req.url).origin;
      req = {
        ...req,
        url: next.toString(),
        // Credentials (and a client certificate) belong to the registry, not to where it redirects.
        ...(sameOrigin ? {} : { headers: dropCredentials(req.headers), tls: undefined }),
        ...(redirect.status === 303 ? { method: "GET", body: undefined } : {}),
      };
    }
  };
}

const REDIRECT_HINT =
  "the registry (or the storage it redirects to) is misconfigured; report it to the registry's operator";

/**
 * Where a redirect from `url` to `location` leads, checked: at most `max` hops from
 * `first` (the URL asked for), and only to http(s), so a registry cannot point ferry
 * at a local file or another scheme.
 */
function redirectTarget(
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

function dropCredentials(h: Record<string, string>): Record<string, string> {
  const { authorization: _a, cookie: _c, ...rest } = h;
  return rest;
}
