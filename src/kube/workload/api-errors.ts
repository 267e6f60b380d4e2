/** Reading the HTTP status out of the client library's errors (ApiException, watch errors). */
export function statusCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === "number") return e.code;
  if (typeof e.statusCode === "number") return e.statusCode;
  return undefined;
}

export function isConflict(error: unknown): boolean {
  return statusCode(error) === 409;
}

export function isNotFound(error: unknown): boolean {
  return statusCode(error) === 404;
}
