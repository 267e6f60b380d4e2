/**
 * The page is read-only and public to whoever reaches the listener, so nothing that looks
 * like a secret leaves through it, whatever a status document happens to hold.
 */

const SECRET_KEY =
  /secret|token|passw|authori[sz]ation|credential|cookie|api[-_]?key|private[-_]?key/i;
/** Userinfo in a URL (`https://user:pass@host`). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi;
const BEARER = /\b(bearer|basic)\s+[a-z0-9._~+/=-]{8,}/gi;

export const REDACTED = "[redacted]";

/** A deep copy with secret-named fields replaced and credentials in strings masked. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 32) return REDACTED;
  if (typeof value === "string") {
    return value.replace(URL_USERINFO, `$1${REDACTED}@`).replace(BEARER, `$1 ${REDACTED}`);
  }
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = SECRET_KEY.test(key) && !isHarmless(v) ? REDACTED : redactSecrets(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Booleans and null say whether a secret is set, not what it is. */
function isHarmless(value: unknown): boolean {
  return typeof value === "boolean" || value === null || value === undefined;
}
