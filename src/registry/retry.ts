import { FerryError, isFerryError } from "../observe/index.ts";
import type { Deadline } from "./deadline.ts";
import { header } from "./headers.ts";
import type { Policy } from "./send.ts";
import type { HttpResponse } from "./transport.ts";

export interface RetryPolicy {
  /** Attempts in a row without progress, including the first. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Give up once this long passes without progress (`--timeout`; see deadline.ts). */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxElapsedMs: 60_000,
};

/** Network failures that a later attempt may not meet; FERRY_TLS, DNS typos and cancellation are final. */
export function isTransientError(err: unknown): boolean {
  if (!isFerryError(err)) return false;
  if (err.code === "FERRY_TIMEOUT") return true;
  if (err.code === "FERRY_UNREACHABLE") return err.fields.errno !== "ENOTFOUND";
  return err.code === "FERRY_REGISTRY_UNAVAILABLE" || err.code === "FERRY_TOO_MANY_REQUESTS";
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504 || status === 500;
}

/** Delay before attempt `attempt + 1`: full-jitter exponential backoff, or Retry-After when given. */
export function backoffDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfter?: string,
  random = Math.random,
): number {
  const afterMs = parseRetryAfter(retryAfter);
  if (afterMs !== undefined) return Math.min(afterMs, policy.maxDelayMs);
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(cap / 2 + (random() * cap) / 2);
}

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Runs `attempt` until it yields a response whose status is not retryable, the
 * deadline is spent, or it throws a final error. The last retryable response is
 * returned (not thrown) so the caller can turn it into a precise error; the last
 * transient error is thrown as it is (the caller knows what was asked for, and says
 * so with `deadline.gaveUp`). Each attempt should use `deadline.idleTimeoutMs()`.
 */
export async function withRetry(
  attempt: () => Promise<HttpResponse>,
  deadline: Deadline,
  signal?: AbortSignal,
): Promise<HttpResponse> {
  for (;;) {
    let res: HttpResponse | undefined;
    let error: unknown;
    deadline.attempt();
    try {
      res = await attempt();
    } catch (err) {
      if (!isTransientError(err)) throw err;
      error = err;
    }
    if (res !== undefined && !isRetryableStatus(res.status)) return res;
    const delay = deadline.nextDelay(res === undefined ? undefined : header(res, "retry-after"));
    if (!deadline.allows(delay)) {
      if (res !== undefined) return res;
      throw error;
    }
    res?.body.resume();
    await sleep(delay, signal);
  }
}

/** The retry policy: each request is sent again (withRetry) while `deadline` allows. */
export function retrying(deadline: Deadline, signal: AbortSignal | undefined): Policy {
  return (next) => (req) => withRetry(() => next(req), deadline, signal);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new FerryError("FERRY_INTERRUPTED", "cancelled"));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new FerryError("FERRY_INTERRUPTED", "cancelled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
