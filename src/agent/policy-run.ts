/**
 * The store's retention policy on its own schedule (what `ferry prune --policy` does once),
 * and the store's size for /metrics, measured at most every few seconds.
 */
import {
  diskUsage,
  measureFilesystem,
  type PruneReport,
  prune,
  type RetentionPolicy,
  type Store,
} from "../store/index.ts";
import { Schedule, type ScheduleStats } from "./schedule.ts";
import type { AgentMetrics } from "./metrics.ts";

const MEASURE_EVERY_MS = 10_000;

export interface AgentPolicyOptions {
  readonly store: Store;
  readonly schedule: string;
  readonly retention: RetentionPolicy;
  readonly metrics: AgentMetrics;
  readonly log: (entry: Record<string, unknown>) => void;
}

export interface PolicyStats extends ScheduleStats {
  readonly retention: RetentionPolicy;
  readonly lastReport?: {
    readonly usagePercent: number | undefined;
    readonly removedImages: readonly string[];
    readonly reclaimedBytes: number;
  };
}

export class AgentPolicy {
  readonly #options: AgentPolicyOptions;
  readonly #schedule: Schedule;
  #last: PruneReport | undefined;

  constructor(options: AgentPolicyOptions) {
    this.#options = options;
    this.#schedule = new Schedule({
      cron: options.schedule,
      run: () => this.runOnce(),
      onSkip: () => options.metrics.scheduleSkipped("policy"),
      onRunEnd: (run) => {
        options.metrics.scheduleRun("policy", run.ok);
        if (!run.ok)
          options.log({ level: "warn", msg: "retention policy failed", error: run.error });
      },
    });
  }

  start(): void {
    this.#schedule.start();
  }

  stop(): Promise<void> {
    return this.#schedule.stop();
  }

  async runOnce(): Promise<void> {
    const { store, retention, metrics, log } = this.#options;
    const report = await prune(store, { policy: retention });
    this.#last = report;
    metrics.reclaimed(report.reclaimedBytes);
    log({
      level: "info",
      msg: "retention policy applied",
      usagePercent: report.policy?.usagePercent,
      overHigh: report.policy?.overHigh,
      removed: report.images.map((i) => i.reference),
      reclaimedBytes: report.reclaimedBytes,
    });
  }

  stats(): PolicyStats {
    const last = this.#last;
    return {
      ...this.#schedule.stats(),
      retention: this.#options.retention,
      ...(last === undefined
        ? {}
        : {
            lastReport: {
              usagePercent: last.policy?.usagePercent,
              removedImages: last.images.map((i) => i.reference),
              reclaimedBytes: last.reclaimedBytes,
            },
          }),
    };
  }
}

/** Refreshes the store gauges of /metrics, unless they were measured moments ago. */
export function createStoreMeter(store: Store, metrics: AgentMetrics): () => Promise<void> {
  let measured = 0;
  return async () => {
    if (Date.now() - measured < MEASURE_EVERY_MS) return;
    measured = Date.now();
    const usage = await measureStoreUsage(store);
    metrics.store(usage.bytes, usage.usedPercent);
  };
}

/** Bytes of blobs in the store, and how full its filesystem is (what the watermarks compare). */
export async function measureStoreUsage(
  store: Store,
): Promise<{ bytes: number; usedPercent: number }> {
  const [usage, fs] = await Promise.all([diskUsage(store), measureFilesystem(store.root)]);
  const used = fs.capacity > 0 ? 100 - Math.floor((fs.available * 100) / fs.capacity) : 0;
  return { bytes: usage.bytes, usedPercent: used };
}
