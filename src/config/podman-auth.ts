/** podman's auth.json: the same `auths` format, keyed "docker.io", "quay.io" (or "quay.io/org", ignored here). */
import { join } from "node:path";
import type { AuthFileFormat } from "./auth-file.ts";
import { homeDirectory } from "./home.ts";
import { canonicalHost } from "./registry-host.ts";

export const PODMAN_FORMAT: AuthFileFormat = { namespaced: true, preferredKey: canonicalHost };

/** `$REGISTRY_AUTH_FILE` when set explicitly. */
export function explicitPodmanAuthPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const path = env.REGISTRY_AUTH_FILE;
  return path !== undefined && path !== "" ? path : undefined;
}

/** podman's own files, in its order: `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.config/containers/auth.json`. */
export function defaultPodmanAuthPaths(
  env: NodeJS.ProcessEnv = process.env,
  home?: string,
): string[] {
  const paths: string[] = [];
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime !== undefined && runtime !== "") paths.push(join(runtime, "containers", "auth.json"));
  paths.push(join(homeDirectory(env, home), ".config", "containers", "auth.json"));
  return paths;
}
