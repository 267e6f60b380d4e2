/**
 * The one retry policy of warming: how long the agent, `ferry bootstrap` and a single warm
 * wait before trying an image (or a target) again. Each delay doubles from `initialMs` up to
 * `maxMs`, with "equal jitter" (half the delay, plus up to the other half at random) so a fleet
 * that failed together does not retry together. Defaults follow kubelet's image pull backoff
 * (10 s doubling to 5 min).
 */
import { FerryError } from "../observe/index.ts";

export interface BackoffPolicy {
  /** The delay before the first retry, before jitter. */
  readonly initialMs: number;
  /** The most any delay grows to, before jitter. */
  readonly maxMs: number;
}

/** A required image that failed (the agent's retries, bootstrap's rounds): 5 s doubling to 5 min. */
export const REQUIRED_IMAGE_BACKOFF: BackoffPolicy = { initialMs: 5_000, maxMs: 300_000 };

/** An optional image that failed, less eagerly (it never holds readiness): 30 s doubling to 10 min. */
export const OPTIONAL_IMAGE_BACKOFF: BackoffPolicy = { initialMs: 30_000, maxMs: 600_000 };

/** A target that does not answer yet (a runtime starting next to bootstrap): 0.5 s doubling to 15 s. */
export const TARGET_WAIT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 15_000 };

/** A transient failure inside one warm (the registry down, slow or rate limiting): 1 s doubling to 30 s. */
export const TRANSIENT_PULL_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000 };

/**
 * The wait before retry number `attempt` (0 for the first): the doubled delay capped at
 * `maxMs`, of which half is fixed and half drawn from `random` (a number in [0, 1)).
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  // 2 ** 40 × any positive initial delay is past every cap: no overflow to Infinity.
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 40));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** The fewest failed attempts in a row after which a webhook-only image is forgotten (default). */
export const WEBHOOK_IMAGE_ATTEMPTS = 8;

/** The bounds of a configured policy: no hammering under a second, no wait past a day. */
const MIN_INITIAL_MS = 1_000;
const MAX_CAP_MS = 86_400_000;

/**
 * `initialMs`/`maxMs` laid over `defaults`, checked (see backoffProblem). `what` names the
 * setting in the error (e.g. "--retry-required").
 */
export function backoffPolicy(
  what: string,
  defaults: BackoffPolicy,
  initialMs: number | undefined,
  maxMs: number | undefined,
): BackoffPolicy {
  const policy = { initialMs: initialMs ?? defaults.initialMs, maxMs: maxMs ?? defaults.maxMs };
  const problem = backoffProblem(policy);
  if (problem !== undefined) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `${what}: ${problem}`, {
      hint: "give the first wait and the cap as durations, e.g. 5s and 5m (the cap at least the first wait)",
    });
  }
  return policy;
}

/** What is wrong with a configured policy: the first wait under 1 s, the cap under it or past 1 d. */
export function backoffProblem(policy: BackoffPolicy): string | undefined {
  if (policy.initialMs < MIN_INITIAL_MS) return "the first wait must be at least 1s";
  if (policy.maxMs < policy.initialMs) {
    return `the cap (${policy.maxMs / 1000}s) is shorter than the first wait (${policy.initialMs / 1000}s)`;
  }
  if (policy.maxMs > MAX_CAP_MS) return "the cap must be at most 1d";
  return undefined;
}
