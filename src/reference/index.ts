/** Image references: grammar, normalization, formatting; the one home of Docker Hub's names. */
export {
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
  DOCKER_HUB_API_HOST,
  DOCKER_HUB_CONFIG_KEY,
  LEGACY_DEFAULT_DOMAIN,
  NAME_MAX_LENGTH,
  OFFICIAL_REPOSITORY_PREFIX,
  PULLABLE_DIGEST_ALGORITHM,
} from "./constants.ts";
export {
  familiarName,
  formatReference,
  repositoryName,
  requirePullable,
  withDigest,
  withTag,
} from "./format.ts";
export { apiHost, isDockerHub, isLoopbackHost } from "./hosts.ts";
export { isUnqualified, parseReference, parseRepository } from "./parse.ts";
export type { Reference, Repository } from "./reference.ts";
