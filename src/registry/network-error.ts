import { FerryError } from "../observe/index.ts";

/** The URL without query string, which may carry signed tokens. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

const TLS_CODES = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "EPROTO",
]);

/** Maps a low-level network failure to a FerryError that names the host and says what to do. */
export function networkError(cause: unknown, url: string): FerryError {
  if (cause instanceof FerryError) return cause;
  const host = safeHost(url);
  const code = (cause as { code?: unknown } | null)?.code;
  const errno = typeof code === "string" ? code : undefined;
  const fields = { host, errno };
  if ((cause as { name?: string } | null)?.name === "AbortError") {
    return new FerryError("FERRY_INTERRUPTED", `request to ${host} was cancelled`, {
      cause,
      fields,
    });
  }
  if (errno === "ENOTFOUND" || errno === "EAI_AGAIN") {
    return new FerryError(
      "FERRY_UNREACHABLE",
      `cannot resolve registry host ${host} (DNS lookup failed)`,
      {
        hint: "check the registry name for typos and that this machine's DNS works",
        cause,
        fields,
      },
    );
  }
  if (errno === "ECONNREFUSED") {
    return new FerryError(
      "FERRY_UNREACHABLE",
      `cannot connect to registry ${host}: connection refused`,
      {
        hint: "check that the registry is running and listening on that address and port",
        cause,
        fields,
      },
    );
  }
  if (
    errno !== undefined &&
    (TLS_CODES.has(errno) || errno.startsWith("ERR_TLS") || errno.startsWith("ERR_SSL"))
  ) {
    return new FerryError("FERRY_TLS", `TLS connection to ${host} failed (${errno})`, {
      hint: "if the registry uses a private CA, set registries.HOST.ca in ferry's config file; for a registry without TLS, set registries.HOST.plainHttp: true (skipVerify: true disables verification)",
      cause,
      fields,
    });
  }
  if (errno === "ETIMEDOUT") {
    return new FerryError(
      "FERRY_TIMEOUT",
      `registry ${host} stopped answering (no data for too long)`,
      {
        hint: "the registry or the network is slow or down; retry later",
        cause,
        fields,
      },
    );
  }
  return new FerryError(
    "FERRY_UNREACHABLE",
    `connection to registry ${host} failed (${errno ?? String(cause)})`,
    {
      hint: "check the network path to the registry and retry",
      cause,
      fields,
    },
  );
}

export function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export function abortError(signal: AbortSignal | undefined): Error {
  return Object.assign(new Error("request aborted", { cause: signal?.reason }), {
    name: "AbortError",
  });
}
