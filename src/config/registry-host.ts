/**
 * How credential files and ferry's config name registries, reduced to one
 * host[:port] form so that every spelling of a registry finds the same entry.
 */
import { DEFAULT_DOMAIN, DOCKER_HUB_CONFIG_KEY, isDockerHub } from "../reference/index.ts";

/** A registry host as ferry compares them: lower case, Docker Hub's names folded into DEFAULT_DOMAIN. */
export function canonicalHost(host: string): string {
  const lower = host.trim().toLowerCase();
  return isDockerHub(lower) ? DEFAULT_DOMAIN : lower;
}

/**
 * The host an `auths`/`credHelpers` key stands for: "https://index.docker.io/v1/",
 * "http://host:5000/v2/", "host:5000". With `namespaced` (podman's auth.json),
 * a key without a scheme but with a path ("quay.io/org") is scoped to a
 * namespace and stands for no whole host, so it gives undefined.
 */
export function hostOfAuthKey(key: string, options: { namespaced: boolean }): string | undefined {
  const lower = key.trim().toLowerCase();
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//.exec(lower);
  const rest = scheme === null ? lower : lower.slice(scheme[0].length);
  const slash = rest.indexOf("/");
  if (options.namespaced && scheme === null && slash >= 0 && slash < rest.length - 1) {
    return undefined;
  }
  const host = slash < 0 ? rest : rest.slice(0, slash);
  if (host === "") return undefined;
  return isDockerHub(host) ? DEFAULT_DOMAIN : host;
}

/** The key Docker writes for a host in config.json, and the server URL it hands credential helpers. */
export function authKeyFor(host: string): string {
  const canonical = canonicalHost(host);
  return canonical === DEFAULT_DOMAIN ? DOCKER_HUB_CONFIG_KEY : canonical;
}

const LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";
const HOST_KEY = new RegExp(`^(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-f:.]+\\])(?::[0-9]{1,5})?$`);

/** Whether text is a bare registry host[:port] (no scheme, no path), as references name registries. */
export function isHostKey(text: string): boolean {
  return HOST_KEY.test(text.toLowerCase());
}
