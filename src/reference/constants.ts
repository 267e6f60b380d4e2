/**
 * Docker Hub's defaults, spelled here and nowhere else in ferry. Other modules
 * ask `isDockerHub()` / `apiHost()` or import these names.
 */

/** The registry a reference names when it names none. */
export const DEFAULT_DOMAIN = "docker.io";

/** Docker Hub's old "index" name; normalized to DEFAULT_DOMAIN. */
export const LEGACY_DEFAULT_DOMAIN = "index.docker.io";

/** Where Docker Hub actually serves the Distribution API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

/** The key Docker's config.json uses for Docker Hub credentials. */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

/** Namespace of official images: `postgres` is `library/postgres`. */
export const OFFICIAL_REPOSITORY_PREFIX = "library/";

/** The tag a reference gets when it names neither tag nor digest. */
export const DEFAULT_TAG = "latest";

/** Longest repository name (domain + "/" + path), after normalization. */
export const NAME_MAX_LENGTH = 255;

/** Longest tag, as in `[\w][\w.-]{0,127}`. */
export const TAG_MAX_LENGTH = 128;

/** The only digest algorithm ferry pulls by. */
export const PULLABLE_DIGEST_ALGORITHM = "sha256";

/** Digest algorithms a reference may carry, with their hex lengths. */
export const DIGEST_HEX_LENGTHS: ReadonlyMap<string, number> = new Map([
  ["sha256", 64],
  ["sha512", 128],
]);
