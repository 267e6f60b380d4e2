/**
 * Pull secrets as kubelet reads them: `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`,
 * `{"auths": {...}}`) and the legacy `kubernetes.io/dockercfg` (`.dockercfg`, the auths map
 * itself). An entry applies to the registry host its key names.
 */
import type { V1Secret } from "@kubernetes/client-node";
import { type Credential, canonicalHost } from "../../config/index.ts";

interface AuthEntry {
  readonly auth?: unknown;
  readonly username?: unknown;
  readonly password?: unknown;
  readonly identitytoken?: unknown;
}

/** The host an auths key names: "https://host:5000/v1/" and "host:5000" both give host:5000. */
function hostOfKey(key: string): string {
  const rest = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = rest.indexOf("/");
  return canonicalHost(slash < 0 ? rest : rest.slice(0, slash));
}

function credentialOf(entry: AuthEntry): Credential | undefined {
  if (typeof entry.identitytoken === "string" && entry.identitytoken !== "") {
    return { identityToken: entry.identitytoken };
  }
  if (typeof entry.username === "string" && typeof entry.password === "string") {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth === "string" && entry.auth !== "") {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

/** Host → credential from one secret; hosts the secret does not name are absent. */
export function credentialsFromSecret(secret: V1Secret): Map<string, Credential> {
  const found = new Map<string, Credential>();
  const data = secret.data ?? {};
  let auths: unknown;
  try {
    if (data[".dockerconfigjson"] !== undefined) {
      const parsed = JSON.parse(Buffer.from(data[".dockerconfigjson"], "base64").toString("utf8"));
      auths = (parsed as { auths?: unknown }).auths;
    } else if (data[".dockercfg"] !== undefined) {
      auths = JSON.parse(Buffer.from(data[".dockercfg"], "base64").toString("utf8"));
    }
  } catch {
    return found;
  }
  if (typeof auths !== "object" || auths === null) return found;
  for (const [key, value] of Object.entries(auths)) {
    if (typeof value !== "object" || value === null) continue;
    const credential = credentialOf(value as AuthEntry);
    const host = hostOfKey(key);
    if (credential !== undefined && host !== "" && !found.has(host)) found.set(host, credential);
  }
  return found;
}
