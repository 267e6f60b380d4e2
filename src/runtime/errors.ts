/** The FerryErrors a runtime target throws; each names the runtime and says what to try. */
import { FerryError } from "../observe/index.ts";

/** Socket errors that mean "nothing is listening there", not "it answered badly". */
const ABSENT_CODES: ReadonlySet<string> = new Set(["ENOENT", "ECONNREFUSED", "ENOTSOCK"]);

export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The runtime cannot be reached at `endpoint`: not running, wrong path, or no permission. */
export function runtimeUnavailable(
  runtime: string,
  endpoint: string,
  reason: string,
  options: { hint: string; cause?: unknown },
): FerryError {
  return new FerryError(
    "FERRY_RUNTIME_UNAVAILABLE",
    `${runtime} at ${endpoint} is not answering: ${reason}`,
    {
      hint: options.hint,
      fields: { runtime, endpoint },
      cause: options.cause,
    },
  );
}

/** A hint for a failed connection, by its errno code; `where` says how to point ferry elsewhere. */
export function connectionHint(code: string | undefined, runtime: string, where: string): string {
  if (code === "EACCES" || code === "EPERM") {
    return `ferry may not open the socket: run it as a user allowed to (root, or the socket's group), or ${where}`;
  }
  if (code !== undefined && ABSENT_CODES.has(code)) {
    return `is ${runtime} running? Start it, or ${where}`;
  }
  return `check that ${runtime} is running and healthy, or ${where}`;
}

/** A registry (or mirror) down, overloaded or cut off, in a runtime's words: Go's net errors and HTTP 5xx. */
const REGISTRY_DOWN =
  /connection refused|connection reset|i\/o timeout|TLS handshake timeout|no route to host|unexpected EOF|\b50[0234] [A-Z][a-z]/;

/** "Too Many Requests", in a runtime's words. */
const RATE_LIMITED = /\b429 Too Many Requests|toomanyrequests/i;

/**
 * The runtime tried and failed to pull; `message` is the runtime's own words (never holds
 * credentials). A registry down or rate limiting gets the registry's transient code, so the
 * pull is tried again as ferry's own would be.
 */
export function pullFailed(
  runtime: string,
  image: string,
  message: string,
  cause?: unknown,
): FerryError {
  const text = `${runtime} could not pull ${image}: ${message}`;
  const fields = { runtime, image, runtimeMessage: message };
  if (RATE_LIMITED.test(message)) {
    return new FerryError("FERRY_TOO_MANY_REQUESTS", text, {
      hint: "the registry is rate limiting the runtime's pulls: ferry tries again later, or wait and run it again",
      fields,
      cause,
    });
  }
  if (REGISTRY_DOWN.test(message)) {
    return new FerryError("FERRY_REGISTRY_UNAVAILABLE", text, {
      hint: "the registry (or the mirror the runtime pulls through) is down or unreachable: ferry tries again later; check that the runtime can reach it",
      fields,
      cause,
    });
  }
  return new FerryError("FERRY_RUNTIME_PULL_FAILED", text, {
    hint: pullHint(message),
    fields,
    cause,
  });
}

// The runtime reports failures as text only; the hint is a guess from it, the code stays the same.
function pullHint(message: string): string {
  if (/unauthori[sz]ed|authentication required|no basic auth|denied|401|403/i.test(message)) {
    return "the registry wants credentials the runtime did not have: log in (ferry login HOST) or check the credential given";
  }
  if (/not found|manifest unknown|does not exist|404/i.test(message)) {
    return "check the image name and tag: the registry does not have it";
  }
  if (/no match(ing)? (for )?platform|platform/i.test(message)) {
    return "the image has no build for the runtime's platform";
  }
  return "the runtime's message says why; check that it can reach the registry";
}

/** containerd's CRI answers this between its socket appearing and its state being loaded. */
export function isStartingUp(message: string): boolean {
  return /server is not initiali[sz]ed yet/.test(message);
}

/** The runtime answered a call with an error other than a failed pull. */
export function runtimeError(
  runtime: string,
  what: string,
  message: string,
  cause?: unknown,
): FerryError {
  return new FerryError("FERRY_RUNTIME_ERROR", `${runtime} failed to ${what}: ${message}`, {
    hint: "the runtime's message says why; its own log may say more",
    fields: { runtime, runtimeMessage: message },
    cause,
  });
}

export function interrupted(runtime: string, cause?: unknown): FerryError {
  return new FerryError("FERRY_INTERRUPTED", `cancelled while talking to ${runtime}`, { cause });
}

export function unsupported(runtime: string, message: string, hint: string): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", `${runtime}: ${message}`, {
    hint,
    fields: { runtime },
  });
}
