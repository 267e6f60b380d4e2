/**
 * `ferry agent`: keeps a machine's listed images in its targets. Warms the list at start, on
 * a cron schedule and when the list file changes; pulls what registry webhooks name; serves
 * health, readiness, status and metrics; runs the store's retention policy on its own
 * schedule; and on the abort signal stops taking work, lets pulls in flight finish (or
 * cancels them after a grace period) and returns.
 */
import { hostname } from "node:os";
import type { CredentialSource } from "../config/index.ts";
import { Metrics } from "../observe/index.ts";
import { formatReference } from "../reference/index.ts";
import type { Target, TargetKind } from "../runtime/index.ts";
import type { RetentionPolicy, Store } from "../store/index.ts";
import { notifySystemdReady } from "./bootstrap.ts";
import { loadImageList } from "./image-list.ts";
import { contentHash, watchList } from "./list-watch.ts";
import { AgentPolicy, createStoreMeter, measureStoreUsage } from "./policy-run.ts";
import { createPushHandler } from "./pushes.ts";
import { PullQueue } from "./queue.ts";
import { Schedule } from "./schedule.ts";
import { AgentState } from "./state.ts";
import { FreshnessGate } from "./freshness.ts";
import { AgentMetrics } from "./metrics.ts";
import { listen } from "./server.ts";
import { type AgentRoutesOptions, createAgentRoutes, statusDocument } from "./status.ts";
import { ActivityLog } from "./activity.ts";
import type { RetrySettings } from "./agent-config.ts";
import {
  OPTIONAL_IMAGE_BACKOFF,
  REQUIRED_IMAGE_BACKOFF,
  WEBHOOK_IMAGE_ATTEMPTS,
} from "./backoff.ts";
import { PullRetries } from "./retries.ts";
import { PendingUnpins, type UnpinTarget } from "./unpins.ts";
import { createStatusPage, Sampler } from "../web/index.ts";
import type { ImageList } from "./types.ts";
import { createWarmFunction } from "./warm.ts";
import { AllowList } from "./webhooks.ts";

/** How often the store's size is sampled for the status page's chart (an hour kept). */
const STORE_SAMPLE_MS = 10_000;

export interface OpenedTargets {
  readonly targets: readonly Target[];
  readonly credentials: CredentialSource;
  /** ferry's store, when it is one of the targets. */
  readonly store: Store | undefined;
  close(): Promise<void>;
}

export interface TargetHooks {
  /** Bytes a target downloaded for one pull (see MeteredPuller). */
  onPulledBytes(target: TargetKind, bytes: number): void;
}

export interface AgentOptions {
  readonly listFile: string;
  /** Overrides the list's `targets:`; the store when neither names any. */
  readonly targets?: readonly TargetKind[] | undefined;
  readonly host: string;
  /** 0 picks a free port (see onListening). */
  readonly port: number;
  readonly schedule?: string | undefined;
  readonly jitterMs?: number | undefined;
  readonly concurrency?: number | undefined;
  /** Webhooks are off without one. */
  readonly webhookSecret?: string | undefined;
  /** Repository prefixes webhooks may pull; default: the listed images' repositories. */
  readonly allow?: readonly string[] | undefined;
  readonly registryHost?: string | undefined;
  readonly policy?: { readonly schedule: string; readonly retention: RetentionPolicy } | undefined;
  /** ferry's store for policy runs and unpinning, when it is not a target. */
  readonly store?: Store | undefined;
  readonly node?: string | undefined;
  /** The registry /metrics renders; others (kube/) add their families to it. */
  readonly metrics?: Metrics | undefined;
  /** The waits before the agent tries a failed image again (defaults: backoff.ts). */
  readonly retry?: RetrySettings | undefined;
  /** How long pulls in flight may take to finish at shutdown (default 20 s). */
  readonly graceMs?: number | undefined;
  /** Opens the targets (the CLI's composition); hooks feed the agent's metrics. */
  readonly openTargets: (
    kinds: readonly TargetKind[],
    hooks: TargetHooks,
  ) => Promise<OpenedTargets>;
  readonly log: (entry: Record<string, unknown>) => void;
  readonly signal: AbortSignal;
  readonly onListening?: ((url: string) => void) | undefined;
  /** Adds to /status (and the page) before it is served, e.g. Kubernetes mode's fleet view. */
  readonly extendStatus?: ((doc: Record<string, unknown>) => Record<string, unknown>) | undefined;
}

export async function runAgent(options: AgentOptions): Promise<void> {
  const { log, signal } = options;
  let list = await loadImageList(options.listFile);
  const listHash = await contentHash(options.listFile);
  let listError: string | undefined;
  let loadedAt = new Date().toISOString();
  const kinds: TargetKind[] = [...(options.targets ?? list.targets ?? [])];
  if (kinds.length === 0) kinds.push("store");
  const metrics = new AgentMetrics(options.metrics ?? new Metrics());
  const opened = await options.openTargets(kinds, {
    onPulledBytes: (target, bytes) => metrics.pulledBytes(target, bytes),
  });
  const store = opened.store ?? options.store;
  const state = new AgentState(kinds);
  state.setList(list.images);
  // The status page's history: recent pulls, and the store's size over time.
  const activity = new ActivityLog();
  const storeUsage =
    store === undefined
      ? undefined
      : new Sampler({
          measure: () => measureStoreUsage(store),
          everyMs: STORE_SAMPLE_MS,
          onError: (err) => log({ level: "debug", msg: "store not measured", error: String(err) }),
        });
  let ready = false;
  const gate = new FreshnessGate();
  const targets = opened.targets.map((t) => gate.wrap(t));
  // A failed image is tried again on its own, not only at the next schedule.
  const retries = new PullRetries({
    ...(options.retry?.required === undefined ? {} : { required: options.retry.required }),
    ...(options.retry?.optional === undefined ? {} : { optional: options.retry.optional }),
    // An image only a webhook named is tried a bounded number of times: nothing lists it.
    maxAttempts: (r) =>
      state.isListed(r.image)
        ? undefined
        : (options.retry?.webhookAttempts ?? WEBHOOK_IMAGE_ATTEMPTS),
    onGiveUp: (image, target, attempts) =>
      log({
        level: "warn",
        msg: "giving up on an image only a webhook named",
        image,
        target,
        failures: attempts,
      }),
    retry: (image, target) => {
      const entry =
        list.images.find((e) => formatReference(e.ref) === image) ?? state.webhookEntry(image);
      if (entry === undefined) return retries.forget(image);
      metrics.retry(target);
      log({
        level: "info",
        msg: "retrying",
        image,
        target,
        failures: retries.get(image, target)?.attempts,
      });
      try {
        queue.add(entry, "retry");
      } catch {} // the agent is shutting down
    },
    onChange: (image, target, retry) => {
      state.setRetry(image, target, retry);
      metrics.retriesPending(retries.pending);
    },
  });
  const queue = new PullQueue({
    warm: createWarmFunction({
      targets,
      credentials: opened.credentials,
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      ...(store === undefined ? {} : { store }),
      onProgress: (r) => state.record(r),
    }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    onResult: (r) => {
      gate.settle(r);
      state.record(r);
      if (state.isListed(r.image) || state.webhookEntry(r.image) !== undefined) retries.record(r);
      metrics.pull(r);
      activity.record(r);
      if (r.state === "pulled" && r.target === "store") void storeUsage?.sample();
      if (r.state === "pulled" || r.state === "failed")
        log({ level: r.error ? "warn" : "info", msg: r.state, ...r });
      if (!ready && state.readiness().ready) {
        ready = true;
        log({ level: "info", msg: "ready: every required image is in every target" });
        void notifySystemdReady().then(
          (n) => n.sent || log({ level: "debug", msg: "systemd not notified", reason: n.reason }),
        );
      }
    },
    onDepth: (depth) => metrics.queueDepth(depth),
    onStart: (entry, reasons) =>
      log({ level: "debug", msg: "warming", image: formatReference(entry.ref), reasons }),
    onError: (entry, err) =>
      log({
        level: "error",
        msg: "warm failed",
        image: formatReference(entry.ref),
        error: String(err),
      }),
  });

  // Listed images are always allowed; explicit prefixes add to them, else their repositories do.
  const allowFor = (l: ImageList) => {
    const refs = l.images.map((e) => e.ref);
    return options.allow?.length
      ? new AllowList(options.allow, refs)
      : AllowList.ofRepositories(refs);
  };
  let allow = allowFor(list);
  // Images taken off the list lose their pins in every target, however long that takes.
  const unpinTargets: UnpinTarget[] = opened.targets.flatMap((t) =>
    t.kind === "store" || t.unpin === undefined
      ? []
      : [{ name: t.name, unpin: (r) => t.unpin!(r) }],
  );
  if (store !== undefined) {
    unpinTargets.push({ name: "store", unpin: (r) => store.setPinned(formatReference(r), false) });
  }
  const unpins = new PendingUnpins({
    targets: unpinTargets,
    backoff: options.retry?.required ?? REQUIRED_IMAGE_BACKOFF,
    log,
    // Warming a present required image pins it again (another tag of an image just unpinned).
    onUnpinned: () => {
      for (const entry of list.images) {
        try {
          if (entry.required) queue.add(entry, "repin");
        } catch {} // the agent is shutting down
      }
    },
  });
  const pushHandler = createPushHandler({ queue, state, gate, targets, list: () => list, log });
  // A push is news: an image given up on (or waiting out its backoff) is tried afresh.
  const onPush: typeof pushHandler = (images, kind) => {
    for (const pushed of images) retries.forget(formatReference(pushed.ref));
    pushHandler(images, kind);
  };

  const warmSchedule =
    options.schedule === undefined
      ? undefined
      : new Schedule({
          cron: options.schedule,
          jitterMs: options.jitterMs ?? 0,
          run: async () => {
            void unpins.reconcile();
            await queue.run(list.images, "schedule");
          },
          onSkip: (tick) => {
            metrics.scheduleSkipped("warm");
            log({
              level: "warn",
              msg: "schedule tick skipped: the previous run is still going",
              tick,
            });
          },
          onRunEnd: (run) => metrics.scheduleRun("warm", run.ok),
        });
  const policy =
    options.policy === undefined || store === undefined
      ? undefined
      : new AgentPolicy({ store, ...options.policy, metrics, log });
  if (options.policy !== undefined && store === undefined) {
    log({ level: "warn", msg: "no store to apply the retention policy to" });
  }

  const page = createStatusPage({ status: () => statusDocument(routes), log });
  const routes: AgentRoutesOptions = {
    node: options.node ?? hostname(),
    state,
    metrics,
    queueDepth: () => queue.depth,
    webhooks: () =>
      options.webhookSecret === undefined
        ? undefined
        : { secret: options.webhookSecret, allow, registryHost: options.registryHost },
    onPush,
    extend: options.extendStatus,
    details: () => ({
      list: {
        path: options.listFile,
        images: list.images.length,
        loadedAt,
        ...(listError ? { error: listError } : {}),
      },
      queue: { depth: queue.depth, ...queue.stats() },
      retries: {
        pending: retries.pending,
        unpinsPending: unpins.pending,
        required: options.retry?.required ?? REQUIRED_IMAGE_BACKOFF,
        optional: options.retry?.optional ?? OPTIONAL_IMAGE_BACKOFF,
      },
      schedule: warmSchedule?.stats() ?? null,
      policy: policy?.stats() ?? null,
      webhooks: { enabled: options.webhookSecret !== undefined, allow: allow.prefixes },
      kind: "agent",
      activity: activity.entries(),
      storeUsage:
        storeUsage === undefined
          ? null
          : {
              ...(options.policy === undefined
                ? {}
                : {
                    highPercent: options.policy.retention.highPercent,
                    lowPercent: options.policy.retention.lowPercent,
                  }),
              samples: storeUsage.samples(),
            },
    }),
    ...(store === undefined
      ? {}
      : { refreshMetrics: createStoreMeter(store, metrics), diskPressure: store.pressure }),
    page,
    log,
  };
  const server = await listen(createAgentRoutes(routes), options.host, options.port);
  log({
    level: "info",
    msg: "agent listening",
    url: server.url,
    targets: kinds,
    images: list.images.length,
  });
  options.onListening?.(server.url);

  for (const target of opened.targets) {
    target.ping(signal).catch((err: unknown) =>
      log({
        level: "warn",
        msg: "target not answering",
        target: target.name,
        error: String(err),
      }),
    );
  }
  void queue.run(list.images, "start").catch(() => {});
  storeUsage?.start();
  warmSchedule?.start();
  policy?.start();

  const reload = async () => {
    let next: ImageList;
    try {
      next = await loadImageList(options.listFile);
    } catch (err) {
      listError = err instanceof Error ? err.message : String(err);
      log({
        level: "warn",
        msg: "image list not reloaded: keeping the previous one",
        error: listError,
      });
      return;
    }
    listError = undefined;
    loadedAt = new Date().toISOString();
    if (
      options.targets === undefined &&
      String(next.targets ?? []) !== String(list.targets ?? [])
    ) {
      log({ level: "warn", msg: "the list names other targets: restart the agent to use them" });
    }
    list = next;
    allow = allowFor(next);
    const change = state.setList(next.images);
    for (const image of change.removed) retries.forget(image);
    // Runtimes too: containerd's pin label goes, so kubelet's image GC may reclaim it again.
    for (const image of change.unrequired) unpins.add(image);
    for (const entry of next.images) if (entry.required) unpins.keep(formatReference(entry.ref));
    for (const entry of [...change.added, ...change.changed]) queue.add(entry, "list");
    // What is to be unpinned; each target's outcome is logged as it comes ("unpinned", "unpin failed").
    log({
      level: "info",
      msg: "image list reloaded",
      added: change.added.map((e) => e.text),
      removed: change.removed,
      unpinning: change.unrequired,
    });
    await unpins.reconcile();
  };
  const watch = watchList(options.listFile, listHash, () => {
    reload().catch((err: unknown) =>
      log({ level: "warn", msg: "reload failed", error: String(err) }),
    );
  });

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  log({ level: "info", msg: "shutting down: finishing pulls in flight", queued: queue.depth });
  watch.stop();
  retries.stop();
  unpins.stop();
  page.close();
  storeUsage?.stop();
  await Promise.all([
    server.close(),
    queue.close(options.graceMs ?? 20_000),
    warmSchedule?.stop(),
    policy?.stop(),
  ]);
  await opened.close();
  log({ level: "info", msg: "agent stopped" });
}
