import { FerryError, isFerryError } from "../observe/index.ts";
import { backoffDelay, DEFAULT_RETRY, type RetryPolicy } from "./retry.ts";

/**
 * The time and attempts one manifest or one blob may spend: it fails once
 * `policy.maxElapsedMs` passes without progress (over every attempt, retry delay and
 * resumed request), or after `policy.maxAttempts` attempts in a row that made none.
 * Progress is the furthest byte received moving on: bytes sent again (a stalled body
 * asked for afresh) do not count. A progress deadline rather than a fixed one, as
 * kubelet's image-pull-progress-deadline: a large layer on a slow link is not cut off
 * while its bytes keep coming.
 */
export class Deadline {
  readonly #policy: RetryPolicy;
  readonly #now: () => number;
  readonly #started: number;
  #lastProgress: number;
  /** The furthest offset of the content received so far. */
  #furthest = 0;
  #attempts = 0;
  /** Attempts since bytes last arrived. */
  #idleAttempts = 0;
  #spent = false;
  /** Why the budget was spent: the deadline (now or before the next attempt could start) or the attempts. */
  #spentBy: "deadline" | "attempts" | undefined;

  constructor(policy: RetryPolicy, now: () => number = Date.now) {
    this.#policy = policy;
    this.#now = now;
    this.#started = now();
    this.#lastProgress = this.#started;
  }

  get timeoutMs(): number {
    return this.#policy.maxElapsedMs;
  }

  get attempts(): number {
    return this.#attempts;
  }

  elapsedMs(): number {
    return this.#now() - this.#started;
  }

  /** An attempt (one request) starts now. */
  attempt(): void {
    this.#attempts++;
    this.#idleAttempts++;
  }

  /** The content has been received up to offset `reached`: past the furthest so far, the deadline moves on. */
  progress(reached: number): void {
    if (reached <= this.#furthest) return;
    this.#furthest = reached;
    this.#lastProgress = this.#now();
    this.#idleAttempts = 0;
  }

  /** The content is fetched again from its start for a reason of ours (bad bytes were dropped). */
  restart(): void {
    this.#furthest = 0;
  }

  remainingMs(): number {
    return this.#lastProgress + this.#policy.maxElapsedMs - this.#now();
  }

  /**
   * How long the next request may go without a byte (connect, head or body): half
   * the deadline, so a stalled connection is replaced once within it, and never
   * past what is left of it.
   */
  idleTimeoutMs(): number {
    return Math.max(1, Math.min(idleTimeoutFor(this.#policy.maxElapsedMs), this.remainingMs()));
  }

  /** The wait before the next attempt (Retry-After when the registry gave one). */
  nextDelay(retryAfter?: string): number {
    return backoffDelay(this.#policy, Math.max(0, this.#idleAttempts - 1), retryAfter);
  }

  /** Whether another attempt may start after waiting `delayMs`; once false, always false. */
  allows(delayMs: number): boolean {
    if (this.#spent) return false;
    if (this.remainingMs() - delayMs <= 0) this.#spentBy = "deadline";
    else if (this.#idleAttempts >= this.#policy.maxAttempts) this.#spentBy = "attempts";
    this.#spent = this.#spentBy !== undefined;
    return !this.#spent;
  }

  /**
   * The error to report when the budget is spent: `last` (the last attempt's error)
   * with how long and how many attempts were spent on `what`. Its code stays `last`'s.
   */
  gaveUp(last: unknown, what: string): unknown {
    if (!isFerryError(last)) return last;
    const spent = `${this.#attempts} attempt${this.#attempts === 1 ? "" : "s"} in ${seconds(this.elapsedMs())}`;
    const fields = {
      ...last.fields,
      attempts: this.#attempts,
      elapsedMs: this.elapsedMs(),
      timeoutMs: this.timeoutMs,
    };
    if (last.code === "FERRY_TIMEOUT") {
      const stalled =
        this.remainingMs() <= 0
          ? `no progress for ${seconds(this.timeoutMs)}, `
          : this.#spentBy === "deadline"
            ? `no progress, and the next attempt would start past the ${seconds(this.timeoutMs)} deadline, `
            : "";
      return new FerryError(
        "FERRY_TIMEOUT",
        `${what}: ${stalled}gave up after ${spent} (${last.message})`,
        {
          hint: "the registry or the network stalled; retry later, or allow more time with --timeout (or registries.HOST.timeoutSeconds in ferry's config file)",
          fields,
          cause: last,
        },
      );
    }
    return new FerryError(last.code, `${last.message} (gave up after ${spent})`, {
      ...(last.hint === undefined ? {} : { hint: last.hint }),
      fields,
      cause: last,
    });
  }
}

/** The per-request idle timeout that goes with a deadline of `timeoutMs`. */
export function idleTimeoutFor(timeoutMs: number): number {
  return Math.max(1, Math.round(timeoutMs / 2));
}

/** The idle timeout of a request made outside any deadline (30 s). */
export function defaultIdleTimeoutMs(): number {
  return idleTimeoutFor(DEFAULT_RETRY.maxElapsedMs);
}

/** "60 s", "2.5 s" */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
