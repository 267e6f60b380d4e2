/**
 * imagePullSecrets as kubelet reads them: `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`
 * holding `{"auths": {...}}`) and the legacy `kubernetes.io/dockercfg` (`.dockercfg`, the auths
 * map itself). Each entry applies to the registry host its key names.
 */
import { type Credential, canonicalHost } from "../config/index.ts";

export interface SecretData {
  readonly type?: string | undefined;
  /** base64 values, as the API returns them */
  readonly data?: Readonly<Record<string, string>> | undefined;
}

function hostOfKey(key: string): string {
  const rest = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = rest.indexOf("/");
  return canonicalHost(slash < 0 ? rest : rest.slice(0, slash));
}

function credentialOf(entry: unknown): Credential | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  if (typeof e["identitytoken"] === "string" && e["identitytoken"] !== "")
    return { identityToken: e["identitytoken"] };
  if (typeof e["username"] === "string" && typeof e["password"] === "string")
    return { username: e["username"], password: e["password"] };
  if (typeof e["auth"] === "string" && e["auth"] !== "") {
    const decoded = Buffer.from(e["auth"], "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** Registry host → credential; a secret of another type, or unreadable, gives none. */
export function credentialsFromSecret(secret: SecretData): Map<string, Credential> {
  const found = new Map<string, Credential>();
  const json = secret.data?.[".dockerconfigjson"];
  const legacy = secret.data?.[".dockercfg"];
  let auths: unknown;
  try {
    if (json !== undefined)
      auths = (JSON.parse(Buffer.from(json, "base64").toString("utf8")) as { auths?: unknown })
        .auths;
    else if (legacy !== undefined)
      auths = JSON.parse(Buffer.from(legacy, "base64").toString("utf8"));
  } catch {
    return found;
  }
  if (typeof auths !== "object" || auths === null) return found;
  for (const [key, entry] of Object.entries(auths)) {
    const credential = credentialOf(entry);
    const host = hostOfKey(key);
    if (credential !== undefined && host !== "" && !found.has(host)) found.set(host, credential);
  }
  return found;
}
