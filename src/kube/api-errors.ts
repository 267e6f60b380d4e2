import { ApiException } from "@kubernetes/client-node";

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
