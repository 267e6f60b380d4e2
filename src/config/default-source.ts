/**
 * The credential source ferry uses unless told otherwise: podman's
 * `$REGISTRY_AUTH_FILE` when set, then Docker's config.json, then podman's
 * default files. Files are read once, when first needed.
 */
import {
  AuthFileSource,
  type CredentialFileOptions,
  DOCKER_FORMAT,
  dockerConfigPath,
} from "./docker-config.ts";
import { type CredentialSource, firstOf } from "./credentials.ts";
import { defaultPodmanAuthPaths, explicitPodmanAuthPath, PODMAN_FORMAT } from "./podman-auth.ts";

export function defaultCredentialSource(
  env: NodeJS.ProcessEnv = process.env,
  options: CredentialFileOptions = {},
): CredentialSource {
  const fileOptions = { ...options, env };
  const sources: AuthFileSource[] = [];
  const explicit = explicitPodmanAuthPath(env);
  if (explicit !== undefined)
    sources.push(new AuthFileSource(explicit, PODMAN_FORMAT, fileOptions));
  sources.push(new AuthFileSource(dockerConfigPath(env, options.home), DOCKER_FORMAT, fileOptions));
  for (const path of defaultPodmanAuthPaths(env, options.home)) {
    if (path !== explicit) sources.push(new AuthFileSource(path, PODMAN_FORMAT, fileOptions));
  }
  return firstOf(sources);
}
