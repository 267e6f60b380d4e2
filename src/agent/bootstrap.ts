/**
 * Bootstrap: the readiness gate of a machine that is starting. Wait until every
 * target answers, warm the list (again and again, with backoff, while required
 * images are missing; backoff.ts's policy), then run the ready hooks: a ready file, systemd's
 * READY=1, and later the removal of a Kubernetes startup taint. All of it
 * within one deadline; optional images never hold readiness back.
 */
import { execFile } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { formatReference } from "../reference/index.ts";
import type { Target, TargetKind } from "../runtime/index.ts";
import { writeFileAtomic } from "../fsx/index.ts";
import {
  type BackoffPolicy,
  backoffDelay,
  REQUIRED_IMAGE_BACKOFF,
  TARGET_WAIT_BACKOFF,
} from "./backoff.ts";
import type { ImageEntry, WarmFunction, WarmResult } from "./types.ts";

/**
 * Runs once every required image is in place, in order, with the outcome (a
 * hook may ignore it: `() => Promise<void>` fits); one that throws fails the bootstrap.
 */
export type ReadyHook = (outcome: BootstrapOutcome) => Promise<void>;

export interface BootstrapOptions {
  readonly targets: readonly Target[];
  readonly images: readonly ImageEntry[];
  /** What warms (createWarmFunction's result); called again for images still missing. */
  readonly warm: WarmFunction;
  /** Give up after this long, counted from the start. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly onReady?: readonly ReadyHook[];
  readonly onEvent?: (event: BootstrapEvent) => void;
  /** Waits between pings of a target not answering yet (default TARGET_WAIT_BACKOFF). */
  readonly targetBackoff?: BackoffPolicy;
  /** Waits between warm rounds while required images are missing (default REQUIRED_IMAGE_BACKOFF). */
  readonly imageBackoff?: BackoffPolicy;
}

export type BootstrapEvent =
  | { type: "target-waiting"; target: TargetKind; name: string; reason: string }
  | { type: "target-ready"; target: TargetKind; name: string }
  | { type: "result"; result: WarmResult }
  | { type: "retry"; images: readonly string[]; delayMs: number }
  | { type: "ready"; seconds: number };

export interface UnavailableTarget {
  readonly target: TargetKind;
  readonly name: string;
  readonly reason: string;
}

export interface BootstrapOutcome {
  readonly ready: boolean;
  /** Why not ready: the deadline passed, or the caller's signal fired. */
  readonly reason?: "timeout" | "interrupted";
  readonly seconds: number;
  /** The latest result per image × target, in list order. */
  readonly results: readonly WarmResult[];
  /** Targets that never answered. */
  readonly unavailable: readonly UnavailableTarget[];
  /** Required images not in place in some target (their latest failure). */
  readonly missing: readonly WarmResult[];
}

export async function runBootstrap(options: BootstrapOptions): Promise<BootstrapOutcome> {
  const started = performance.now();
  const seconds = () => Math.round(performance.now() - started) / 1000;
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const run = options.signal ? AbortSignal.any([options.signal, deadline]) : deadline;
  const emit = options.onEvent ?? (() => {});
  const stopped = (extra: Partial<BootstrapOutcome>): BootstrapOutcome => ({
    ready: false,
    reason: options.signal?.aborted ? "interrupted" : "timeout",
    seconds: seconds(),
    results: [],
    unavailable: [],
    missing: [],
    ...extra,
  });

  const unavailable = await waitForTargets(
    options.targets,
    run,
    options.targetBackoff ?? TARGET_WAIT_BACKOFF,
    emit,
  );
  if (unavailable.length > 0) return stopped({ unavailable });

  let round = 0;
  const latest = new Map<string, WarmResult>();
  let todo = options.images;
  for (;;) {
    const results = await options.warm(todo, {
      signal: run,
      onResult: (result) => {
        if (result.state !== "pulling") emit({ type: "result", result });
      },
    });
    for (const r of results) {
      const key = `${r.image} ${r.target}`;
      const before = latest.get(key);
      // A failure cut short by the deadline says less than the one before it.
      if (!(r.error?.code === "FERRY_INTERRUPTED" && before?.state === "failed"))
        latest.set(key, r);
    }
    const missing = [...latest.values()].filter((r) => r.required && r.state === "failed");
    const ordered = orderedResults(options.images, options.targets, latest);
    if (missing.length === 0) break;
    if (run.aborted) return stopped({ results: ordered, missing });
    const delayMs = backoffDelay(options.imageBackoff ?? REQUIRED_IMAGE_BACKOFF, round++);
    const images = new Set(missing.map((r) => r.image));
    emit({ type: "retry", images: [...images], delayMs });
    if (!(await pause(delayMs, run))) return stopped({ results: ordered, missing });
    todo = options.images.filter((entry) => images.has(keyOf(entry)));
  }
  const outcome: BootstrapOutcome = {
    ready: true,
    seconds: seconds(),
    results: orderedResults(options.images, options.targets, latest),
    unavailable: [],
    missing: [],
  };
  for (const hook of options.onReady ?? []) await hook(outcome);
  emit({ type: "ready", seconds: outcome.seconds });
  return outcome;
}

/** Pings until every target answers; returns those that had not when `signal` fired. */
async function waitForTargets(
  targets: readonly Target[],
  signal: AbortSignal,
  backoff: BackoffPolicy,
  emit: (event: BootstrapEvent) => void,
): Promise<UnavailableTarget[]> {
  let pending = [...targets];
  let round = 0;
  const reasons = new Map<Target, string>();
  while (pending.length > 0) {
    const answers = await Promise.all(
      pending.map(async (target) => {
        try {
          await target.ping(signal);
          emit({ type: "target-ready", target: target.kind, name: target.name });
          return undefined;
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          // Said once per change of reason, not on every ping.
          if (reasons.get(target) !== reason && !signal.aborted) {
            emit({ type: "target-waiting", target: target.kind, name: target.name, reason });
          }
          if (!signal.aborted || !reasons.has(target)) reasons.set(target, reason);
          return target;
        }
      }),
    );
    pending = answers.filter((t): t is Target => t !== undefined);
    if (pending.length === 0 || !(await pause(backoffDelay(backoff, round++), signal))) break;
  }
  return pending.map((t) => ({ target: t.kind, name: t.name, reason: reasons.get(t) ?? "" }));
}

/** Sleeps unless `signal` fires first; false when it did. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function keyOf(entry: ImageEntry): string {
  return formatReference(entry.ref);
}

function orderedResults(
  images: readonly ImageEntry[],
  targets: readonly Target[],
  latest: ReadonlyMap<string, WarmResult>,
): WarmResult[] {
  return images.flatMap((entry) =>
    targets.flatMap((t) => latest.get(`${keyOf(entry)} ${t.kind}`) ?? []),
  );
}

// ---- ready signals (hooks the CLI and the daemon install) ----

/**
 * A hook that writes `path` atomically (readers see no file, or all of it):
 * `{"ready":true,"at":…,"seconds":…,"images":[{image,target,state,required,digest}]}`.
 */
export function readyFileHook(path: string): ReadyHook {
  return (outcome) => {
    const images = outcome.results.map(({ image, target, state, required, digest }) => ({
      image,
      target,
      state,
      required,
      ...(digest === undefined ? {} : { digest }),
    }));
    const doc = { ready: true, at: new Date().toISOString(), seconds: outcome.seconds, images };
    return writeFileAtomic(path, `${JSON.stringify(doc)}\n`);
  };
}

export type SystemdNotifyResult =
  | { readonly sent: true }
  | { readonly sent: false; readonly reason: string };

/**
 * Tells systemd the service is ready (Type=notify) with `systemd-notify --ready`:
 * Node cannot send on a unix datagram socket. The unit needs NotifyAccess=all,
 * since the message comes from that child, not from ferry's own pid.
 */
export function notifySystemdReady(
  env: NodeJS.ProcessEnv = process.env,
): Promise<SystemdNotifyResult> {
  if (!env.NOTIFY_SOCKET)
    return Promise.resolve({ sent: false, reason: "NOTIFY_SOCKET is not set" });
  return new Promise((resolve) => {
    execFile("systemd-notify", ["--ready"], { env, timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve({ sent: true });
      else if ((err as { code?: unknown }).code === "ENOENT") {
        resolve({ sent: false, reason: "systemd-notify is not installed (NOTIFY_SOCKET is set)" });
      } else
        resolve({ sent: false, reason: `systemd-notify failed: ${stderr.trim() || err.message}` });
    });
  });
}
