/**
 * The agent's own retries of failed images, so a failure at boot (registry not up yet, DNS not
 * ready, a tag pushed a minute later, a 5xx burst longer than the pull's retries) does not wait
 * for the next schedule. Per image × target: each failure schedules the next attempt with
 * backoff.ts's policy (required images sooner than optional ones), a success forgets it. An
 * image with a cap on attempts (one only a webhook named) is given up once it reaches it.
 */
import type { TargetKind } from "../runtime/index.ts";
import {
  type BackoffPolicy,
  backoffDelay,
  OPTIONAL_IMAGE_BACKOFF,
  REQUIRED_IMAGE_BACKOFF,
} from "./backoff.ts";
import type { WarmResult } from "./types.ts";

/** What /status shows of an image × target waiting to be tried again. */
export interface PendingRetry {
  /** Failed attempts in a row. */
  readonly attempts: number;
  readonly nextAttemptAt: string;
}

export interface PullRetriesOptions {
  readonly required?: BackoffPolicy;
  readonly optional?: BackoffPolicy;
  /** Tries the image again (the agent queues it); its result comes back through record(). */
  readonly retry: (image: string, target: TargetKind) => void;
  /** Failed attempts in a row after which an image × target is given up; undefined: never. */
  readonly maxAttempts?: (result: WarmResult) => number | undefined;
  /** An image × target given up after `attempts` failures in a row (it is not tried again). */
  readonly onGiveUp?: (image: string, target: TargetKind, attempts: number) => void;
  /** After each change of an image × target's pending retry (undefined: none). */
  readonly onChange?: (image: string, target: TargetKind, retry: PendingRetry | undefined) => void;
  readonly random?: () => number;
}

interface Entry {
  readonly image: string;
  readonly target: TargetKind;
  attempts: number;
  nextAt: number;
  timer: NodeJS.Timeout | undefined;
}

export class PullRetries {
  readonly #o: PullRetriesOptions;
  readonly #entries = new Map<string, Entry>();
  /** Image × target keys given up on: their failures schedule nothing until forget(). */
  readonly #givenUp = new Set<string>();
  #stopped = false;

  constructor(options: PullRetriesOptions) {
    this.#o = options;
  }

  /** Hears every warm result: a failure schedules the next attempt, anything settled clears it. */
  record(result: WarmResult): void {
    if (this.#stopped || result.state === "pulling") return;
    const key = keyOf(result.image, result.target);
    const entry = this.#entries.get(key);
    if (result.state !== "failed") {
      this.#givenUp.delete(key);
      if (entry !== undefined) this.#clear(key, entry);
      return;
    }
    if (this.#givenUp.has(key)) return;
    // A pull cut short by the agent's own shutdown is no failure of the image.
    if (result.error?.code === "FERRY_INTERRUPTED") return;
    const policy = result.required
      ? (this.#o.required ?? REQUIRED_IMAGE_BACKOFF)
      : (this.#o.optional ?? OPTIONAL_IMAGE_BACKOFF);
    const attempts = (entry?.attempts ?? 0) + 1;
    const cap = this.#o.maxAttempts?.(result);
    if (cap !== undefined && attempts >= cap) {
      this.#givenUp.add(key);
      if (entry !== undefined) this.#clear(key, entry);
      this.#o.onGiveUp?.(result.image, result.target, attempts);
      return;
    }
    const delay = backoffDelay(policy, attempts - 1, this.#o.random);
    clearTimeout(entry?.timer);
    const next: Entry = {
      image: result.image,
      target: result.target,
      attempts,
      nextAt: Date.now() + delay,
      timer: undefined,
    };
    next.timer = setTimeout(() => {
      next.timer = undefined;
      if (!this.#stopped) this.#o.retry(result.image, result.target);
    }, delay);
    next.timer.unref();
    this.#entries.set(key, next);
    this.#o.onChange?.(result.image, result.target, pendingOf(next));
  }

  /** An image taken off the list is not tried again; one pushed again starts afresh. */
  forget(image: string): void {
    for (const [key, entry] of this.#entries) if (entry.image === image) this.#clear(key, entry);
    for (const key of this.#givenUp) if (key.startsWith(`${image} `)) this.#givenUp.delete(key);
  }

  get(image: string, target: TargetKind): PendingRetry | undefined {
    const entry = this.#entries.get(keyOf(image, target));
    return entry === undefined ? undefined : pendingOf(entry);
  }

  /** Image × target pairs waiting to be tried again. */
  get pending(): number {
    return this.#entries.size;
  }

  stop(): void {
    this.#stopped = true;
    for (const entry of this.#entries.values()) clearTimeout(entry.timer);
  }

  #clear(key: string, entry: Entry): void {
    clearTimeout(entry.timer);
    this.#entries.delete(key);
    this.#o.onChange?.(entry.image, entry.target, undefined);
  }
}

function pendingOf(entry: Entry): PendingRetry {
  return { attempts: entry.attempts, nextAttemptAt: new Date(entry.nextAt).toISOString() };
}

/** References hold no spaces, so a space separates the image from the target. */
function keyOf(image: string, target: TargetKind): string {
  return `${image} ${target}`;
}
