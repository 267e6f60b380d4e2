import { ApiException } from "@kubernetes/client-node";
import { FerryError, isFerryError } from "../observe/index.ts";

/** The HTTP status of a failed API call, undefined for other errors. */
export function apiStatus(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { statusCode?: unknown; code?: unknown } | undefined)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

/** The message of an API Status body, or the error's own. */
export function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      const body =
        typeof error.body === "string"
          ? (JSON.parse(error.body) as { message?: string })
          : (error.body as { message?: string });
      if (body?.message) return `${body.message} (HTTP ${error.code})`;
    } catch {}
    return `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Why the first calls to the API server failed, as a FerryError with a hint (never "a bug"). */
export function apiConnectError(error: unknown, server: string): FerryError {
  if (isFerryError(error)) return error;
  const status = apiStatus(error);
  const fields = { server, ...(status === undefined ? {} : { status }) };
  if (status === 401)
    return new FerryError(
      "FERRY_AUTH_REJECTED",
      `the Kubernetes API server ${server} refused the credentials (HTTP 401)`,
      {
        hint: "check the kubeconfig's user (token, client certificate) or the ServiceAccount token",
        cause: error,
        fields,
      },
    );
  if (status === 403)
    return new FerryError(
      "FERRY_DENIED",
      `the Kubernetes API server ${server} denied: ${apiMessage(error)}`,
      {
        hint: "bind the agent's RBAC rules (deploy/kubernetes/base) to the identity the kubeconfig uses",
        cause: error,
        fields,
      },
    );
  if (status !== undefined)
    return new FerryError(
      "FERRY_UNREACHABLE",
      `the Kubernetes API server ${server} answered: ${apiMessage(error)}`,
      {
        hint: "check that the kubeconfig points at the API server and that ferry's CRDs are installed (deploy/kubernetes)",
        cause: error,
        fields,
      },
    );
  const cause = causeOf(error);
  const errno = typeof cause.code === "string" ? cause.code : undefined;
  if (cause.syscall?.startsWith("spawn"))
    return new FerryError(
      "FERRY_CONFIG_INVALID",
      `the kubeconfig's credential plugin cannot be run: ${cause.message}`,
      {
        hint: "install the command the kubeconfig's user.exec names, or use another context",
        cause: error,
        fields,
      },
    );
  if (typeof cause.path === "string")
    return new FerryError(
      "FERRY_CONFIG_INVALID",
      `a file the kubeconfig (or ServiceAccount) names cannot be read: ${cause.path} (${errno ?? cause.message})`,
      {
        hint: "fix the path (certificate-authority, client-certificate, client-key, tokenFile) in the kubeconfig",
        cause: error,
        fields,
      },
    );
  if (errno !== undefined && TLS_ERROR.test(errno))
    return new FerryError(
      "FERRY_TLS",
      `TLS connection to the Kubernetes API server ${server} failed (${errno})`,
      {
        hint: "the kubeconfig's certificate-authority(-data) must be the CA that signed the API server's certificate",
        cause: error,
        fields,
      },
    );
  // Not a failed request: the client could not use the kubeconfig (a credential plugin that
  // failed or printed no credential, a setting it does not support).
  if (!(error instanceof TypeError && error.message === "fetch failed"))
    return new FerryError(
      "FERRY_CONFIG_INVALID",
      `the kubeconfig cannot be used: ${cause.message || "its credential plugin failed"}`,
      {
        hint: "check its user (exec plugin, token, client certificate) and cluster; `kubectl --kubeconfig FILE get nodes` meets the same problem",
        cause: error,
        fields,
      },
    );
  return new FerryError(
    "FERRY_UNREACHABLE",
    `cannot reach the Kubernetes API server ${server} (${errno ?? cause.message})`,
    {
      hint: "check the kubeconfig's server address and that the API server (or kubectl proxy) is running",
      cause: error,
      fields,
    },
  );
}

/** Node's and OpenSSL's codes for a certificate or handshake failure. */
const TLS_ERROR = /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/;

interface SystemError {
  readonly message: string;
  readonly code?: unknown;
  readonly path?: unknown;
  readonly syscall?: string;
}

/** The innermost error: fetch's "fetch failed" carries the socket's in `cause`. */
function causeOf(error: unknown): SystemError {
  let e: unknown = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? (e as SystemError) : { message: String(e) };
}
