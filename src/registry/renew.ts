import { type Challenge, pickChallenge } from "./challenge.ts";
import { errorFromResponse, type RequestContext } from "./errors.ts";
import { header } from "./headers.ts";
import type { Policy } from "./send.ts";

/**
 * The renewal policy: a 401 means the token expired or the challenge changed, so the
 * challenge it carries is learnt (`renew`: remember it, forget the refused token) and the
 * request is sent once more, through the auth policy below, with fresh credentials. A 401
 * without a challenge is an error of the registry's, worded for `context`.
 */
export function renewingOn401(
  context: RequestContext,
  renew: (challenge: Challenge) => void,
): Policy {
  return (next) => async (req) => {
    const res = await next(req);
    if (res.status !== 401) return res;
    const challenge = pickChallenge(header(res, "www-authenticate"));
    res.body.resume();
    if (challenge === undefined) throw await errorFromResponse(res, context);
    renew(challenge);
    return next(req);
  };
}
