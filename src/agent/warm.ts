/**
 * Warming: every listed image into every target, in parallel under one limit.
 * Each image × target is looked at (status), pulled when missing (retried with
 * backoff while the failure is one a later attempt may not meet) and, when the
 * list requires it, pinned. Idempotent: a second run finds everything present.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { CredentialSource } from "../config/index.ts";
import { type ErrorCode, FerryError, isFerryError } from "../observe/index.ts";
import { Limiter } from "../pull/index.ts";
import { formatReference } from "../reference/index.ts";
import type { ImagePresence, Target } from "../runtime/index.ts";
import type { Store } from "../store/index.ts";
import { type BackoffPolicy, backoffDelay, TRANSIENT_PULL_BACKOFF } from "./backoff.ts";
import type { ImageEntry, ProgressPullOptions, WarmFunction, WarmResult } from "./types.ts";

export const DEFAULT_WARM_CONCURRENCY = 4;
export const DEFAULT_WARM_RETRIES = 3;

/** Failures a later attempt may not meet: the registry or runtime down, slow or rate limiting. */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "FERRY_UNREACHABLE",
  "FERRY_TIMEOUT",
  "FERRY_REGISTRY_UNAVAILABLE",
  "FERRY_TOO_MANY_REQUESTS",
  "FERRY_RUNTIME_UNAVAILABLE",
]);

export interface WarmOptions {
  readonly targets: readonly Target[];
  /** Image × target jobs at once (default 4). */
  readonly concurrency?: number;
  /** Attempts after the first, for transient failures (default 3). */
  readonly retries?: number;
  /** Delay before the first retry; doubles on each, with jitter (default TRANSIENT_PULL_BACKOFF's 1 s → 30 s). */
  readonly retryDelayMs?: number;
  /** Credentials handed to runtime targets, looked up by the image's registry host. */
  readonly credentials: CredentialSource;
  /** ferry's store: a listed image found present there counts as used, so LRU eviction spares it. */
  readonly store?: Store;
  /** Hears pulls' progress (a "pulling" result with `progress`), where a target reports it. */
  readonly onProgress?: (r: WarmResult) => void;
}

export interface CheckOptions {
  readonly targets: readonly Target[];
  readonly concurrency?: number;
}

/** Whether a failure is worth another attempt (by code, never by message). */
export function isTransientWarmError(err: unknown): boolean {
  return isFerryError(err) && TRANSIENT_CODES.has(err.code);
}

/**
 * The function every trigger calls. Its limit is shared by all its calls, so a
 * schedule and a webhook warming at once still run `concurrency` jobs in all.
 * Results come in list order (image, then target); `onResult` hears each one as
 * it settles, and a "pulling" result when a pull starts.
 */
export function createWarmFunction(options: WarmOptions): WarmFunction {
  const limiter = new Limiter(options.concurrency ?? DEFAULT_WARM_CONCURRENCY);
  const retries = options.retries ?? DEFAULT_WARM_RETRIES;
  const backoff: BackoffPolicy =
    options.retryDelayMs === undefined
      ? TRANSIENT_PULL_BACKOFF
      : { ...TRANSIENT_PULL_BACKOFF, initialMs: options.retryDelayMs };
  return (images, { signal, onResult } = {}) =>
    forEachJob(images, options.targets, limiter, signal, onResult, async (entry, target, base) => {
      const started = performance.now();
      let pulled = false;
      let bytes: number | undefined;
      let fromPeers: number | undefined;
      let via: string | undefined;
      const presence = await withRetries(retries, backoff, signal, async () => {
        const found = await target.status(entry.ref, signal, entry.platform);
        if (found.present) return found;
        onResult?.({ ...base, state: "pulling" });
        pulled = true;
        const credential = await options.credentials.get(entry.ref.domain);
        const pullOptions: ProgressPullOptions = {
          ...(entry.platform === undefined ? {} : { platform: entry.platform }),
          ...(credential === undefined ? {} : { credential }),
          ...(signal === undefined ? {} : { signal }),
          onProgress: (progress) => {
            bytes = progress.downloaded;
            fromPeers = progress.fromPeers;
            via = progress.via;
            options.onProgress?.({ ...base, state: "pulling", progress });
          },
        };
        return target.pull(entry.ref, pullOptions);
      });
      const pinned = entry.required && target.pin !== undefined;
      if (pinned) await target.pin!(entry.ref, signal);
      if (!pulled && target.kind === "store") await options.store?.touch(base.image);
      const digest = digestOf(presence);
      return {
        ...base,
        state: pulled ? "pulled" : "present",
        ...(digest === undefined ? {} : { digest }),
        ...(pulled ? { seconds: Math.round(performance.now() - started) / 1000 } : {}),
        ...(pulled && bytes !== undefined ? { bytes } : {}),
        ...(pulled && fromPeers ? { bytesFromPeers: fromPeers } : {}),
        ...(pulled && via !== undefined ? { via } : {}),
        ...(pinned ? { pinned } : {}),
      };
    });
}

/** Looks without pulling: present or missing per image × target (failed when a target cannot say). */
export function createCheckFunction(options: CheckOptions): WarmFunction {
  const limiter = new Limiter(options.concurrency ?? DEFAULT_WARM_CONCURRENCY);
  return (images, { signal, onResult } = {}) =>
    forEachJob(images, options.targets, limiter, signal, onResult, async (entry, target, base) => {
      const presence = await target.status(entry.ref, signal, entry.platform);
      const digest = presence.present ? digestOf(presence) : undefined;
      return {
        ...base,
        state: presence.present ? "present" : "missing",
        ...(digest === undefined ? {} : { digest }),
      };
    });
}

type Job = (entry: ImageEntry, target: Target, base: JobBase) => Promise<WarmResult>;
type JobBase = Pick<WarmResult, "image" | "target" | "required">;

/** Runs `job` for every image × target under `limiter`; results in list order, each reported as it settles. */
async function forEachJob(
  images: readonly ImageEntry[],
  targets: readonly Target[],
  limiter: Limiter,
  signal: AbortSignal | undefined,
  onResult: ((r: WarmResult) => void) | undefined,
  job: Job,
): Promise<WarmResult[]> {
  const jobs = images.flatMap((entry) => targets.map((target) => ({ entry, target })));
  return Promise.all(
    jobs.map(({ entry, target }) =>
      limiter.run(async () => {
        const base: JobBase = {
          image: formatReference(entry.ref),
          target: target.kind,
          required: entry.required,
        };
        let result: WarmResult;
        try {
          if (signal?.aborted) throw interrupted();
          result = await job(entry, target, base);
        } catch (err) {
          const e = asError(err, signal);
          result = { ...base, state: "failed", error: { code: e.code, message: e.message } };
        }
        onResult?.(result);
        return result;
      }),
    ),
  );
}

async function withRetries(
  retries: number,
  backoff: BackoffPolicy,
  signal: AbortSignal | undefined,
  attempt: () => Promise<ImagePresence>,
): Promise<ImagePresence> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (n >= retries || !isTransientWarmError(err) || signal?.aborted) throw err;
    }
    await sleep(backoffDelay(backoff, n), undefined, { signal });
  }
}

function digestOf(presence: ImagePresence): string | undefined {
  const pinned = presence.repoDigests?.[0];
  return pinned === undefined ? presence.id : pinned.slice(pinned.indexOf("@") + 1);
}

function interrupted(): FerryError {
  return new FerryError("FERRY_INTERRUPTED", "cancelled", {
    hint: "run it again to finish; what was pulled is kept",
  });
}

function asError(err: unknown, signal: AbortSignal | undefined): FerryError {
  if (isFerryError(err)) return err;
  if (signal?.aborted || (err as { name?: string } | undefined)?.name === "AbortError") {
    return interrupted();
  }
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError("FERRY_INTERNAL", `unexpected error: ${message}`, { cause: err });
}
