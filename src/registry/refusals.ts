import { FerryError } from "../observe/index.ts";
import type { Challenge } from "./challenge.ts";
import type { Policy } from "./send.ts";

/** Who was refused: the endpoint's host, the repository, and what the client knows of them. */
export interface Refused {
  readonly host: string;
  readonly repository: { readonly domain: string; readonly path: string };
  /** The endpoint's challenge as last learnt. */
  challenge(): Promise<Challenge | undefined>;
  hasCredentials(): Promise<boolean>;
}

/**
 * The classification of a 401 that survived renewal, when the user has credentials for
 * the host: under Bearer the token server accepted them but the token does not cover the
 * repository (FERRY_DENIED); otherwise the registry refused them (FERRY_AUTH_REJECTED).
 * Without credentials the 401 is returned, for the caller to word as "log in".
 */
export function classifying401(refused: Refused): Policy {
  return (next) => async (req) => {
    const res = await next(req);
    if (res.status !== 401 || !(await refused.hasCredentials())) return res;
    res.body.resume();
    const { host, repository } = refused;
    const fields = { host, repository: repository.path };
    if ((await refused.challenge())?.scheme === "bearer") {
      throw new FerryError(
        "FERRY_DENIED",
        `access to ${repository.domain}/${repository.path} denied: your credentials for ${host} are valid but not allowed to pull it`,
        {
          hint: "ask the repository's owner for pull access, or log in as a user who has it",
          fields,
        },
      );
    }
    throw new FerryError(
      "FERRY_AUTH_REJECTED",
      `registry ${host} did not accept the credentials for ${repository.path}`,
      { hint: `log in again with \`ferry login ${host}\``, fields },
    );
  };
}
