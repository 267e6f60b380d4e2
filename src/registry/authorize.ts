import type { Challenge } from "./challenge.ts";
import { discard, type Policy } from "./send.ts";
import type { HttpRequest } from "./transport.ts";

/** What the auth policy needs to know of one endpoint, for one scope. */
export interface EndpointAuth {
  /** Origin of the endpoint (`http://host:port`): the only one its credentials go to. */
  readonly origin: string;
  /** Whether the endpoint's challenge is known already (pinged, or learnt from a 401). */
  known(): boolean;
  /** The endpoint's challenge (GET /v2/ once per endpoint); undefined: it wants no credentials. */
  challenge(): Promise<Challenge | undefined>;
  /** The Authorization value that answers `challenge` (undefined: none to send). */
  authorization(challenge: Challenge | undefined): Promise<string | undefined>;
}

/** Only these are sent twice (anonymous, then with credentials) without harm. */
const SAFE_METHODS = new Set(["GET", "HEAD"]);

/**
 * The auth policy: a request to the endpoint's origin gets the endpoint's credentials; a
 * request anywhere else (an upload Location on storage) goes as it is. While the endpoint's
 * challenge is unknown, a GET or HEAD goes out anonymous at the same time as the ping
 * instead of after it: when the ping says no credentials are wanted (a local registry, a
 * mirror), that answer is used and a round trip is saved; otherwise it is thrown away
 * unread, so a 401/404 given to an anonymous client is never mistaken for the answer.
 */
export function authorizing(auth: EndpointAuth): Policy {
  return (next) => async (req) => {
    if (new URL(req.url).origin !== auth.origin) return next(req);
    if (auth.known() || !SAFE_METHODS.has(req.method)) {
      return next(authorized(req, await auth.authorization(await auth.challenge())));
    }
    const anonymous = next(req);
    anonymous.catch(() => {}); // its failure matters only if it is used, and then it is awaited
    const challenge = await auth.challenge().catch((err: unknown) => {
      discard(anonymous);
      throw err;
    });
    if (challenge === undefined) return anonymous;
    discard(anonymous);
    return next(authorized(req, await auth.authorization(challenge)));
  };
}

function authorized(req: HttpRequest, value: string | undefined): HttpRequest {
  return value === undefined ? req : { ...req, headers: { ...req.headers, authorization: value } };
}
