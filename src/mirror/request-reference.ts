import { parseReference, type Reference } from "../reference/index.ts";
import { DistributionError } from "./errors.ts";

/** The reference a request names: its registry (`?ns=` or the default), repository and tag or digest. */
export function requestReference(
  defaultNamespace: string,
  namespace: string | undefined,
  name: string,
  reference: string,
): Reference {
  const domain = namespace ?? defaultNamespace;
  const sep = reference.includes(":") ? "@" : ":";
  try {
    return parseReference(`${domain}/${name}${sep}${reference}`);
  } catch {
    throw new DistributionError(400, "NAME_INVALID", `invalid repository ${domain}/${name}`);
  }
}

/** `domain/path`: how guards and members name a repository. */
export function repositoryOf(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}
