/** The agent's Prometheus series (over observe's Metrics registry), named in one place. */
import type { Metrics } from "../observe/index.ts";
import type { TargetKind } from "../runtime/index.ts";
import type { WarmResult } from "./types.ts";
import type { WebhookKind } from "./webhooks.ts";

export class AgentMetrics {
  readonly #metrics: Metrics;
  readonly #pulls;
  readonly #failures;
  readonly #seconds;
  readonly #bytes;
  readonly #webhooks;
  readonly #queue;
  readonly #ready;
  readonly #runs;
  readonly #skipped;
  readonly #storeBytes;
  readonly #storeUsed;
  readonly #reclaimed;
  readonly #retries;
  readonly #retriesPending;
  readonly #diskFull;

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
    const m = metrics;
    this.#pulls = m.counter(
      "ferry_agent_pulls_total",
      "Warm results per target: pulled, present or failed.",
    );
    this.#failures = m.counter(
      "ferry_agent_pull_failures_total",
      "Failed warms per target and error code.",
    );
    this.#seconds = m.counter(
      "ferry_agent_pull_seconds_total",
      "Seconds spent pulling images, per target.",
    );
    this.#bytes = m.counter(
      "ferry_agent_pulled_bytes_total",
      "Bytes downloaded into ferry's store (runtimes do not report theirs).",
    );
    this.#webhooks = m.counter(
      "ferry_agent_webhooks_total",
      "Webhook requests per source and HTTP status.",
    );
    this.#queue = m.gauge("ferry_agent_queue_depth", "Pulls waiting or running.");
    this.#ready = m.gauge(
      "ferry_agent_ready",
      "1 when every required image is present in every target.",
    );
    this.#runs = m.counter(
      "ferry_agent_schedule_runs_total",
      "Scheduled runs per schedule and result.",
    );
    this.#skipped = m.counter(
      "ferry_agent_schedule_skipped_total",
      "Ticks skipped because the previous run was still going.",
    );
    this.#storeBytes = m.gauge("ferry_agent_store_bytes", "Bytes of blobs in ferry's store.");
    this.#storeUsed = m.gauge(
      "ferry_agent_store_filesystem_used_percent",
      "Use of the filesystem holding the store.",
    );
    this.#reclaimed = m.counter(
      "ferry_agent_prune_reclaimed_bytes_total",
      "Bytes the retention policy freed.",
    );
    this.#retries = m.counter(
      "ferry_agent_pull_retries_total",
      "Failed images the agent tried again on its own (backoff), per target.",
    );
    this.#retriesPending = m.gauge(
      "ferry_agent_pull_retries_pending",
      "Image × target pairs waiting for the agent's next attempt after a failure.",
    );
    this.#diskFull = m.gauge(
      "ferry_agent_store_disk_full",
      "1 while writes to ferry's store find its disk full.",
    );
  }

  pull(r: WarmResult): void {
    if (r.state === "pulling") return;
    this.#pulls({ target: r.target, result: r.state });
    if (r.state === "failed")
      this.#failures({ target: r.target, code: r.error?.code ?? "unknown" });
    if (r.seconds !== undefined) this.#seconds({ target: r.target }, r.seconds);
  }

  retry(target: TargetKind): void {
    this.#retries({ target });
  }

  retriesPending(pending: number): void {
    this.#retriesPending(pending);
  }

  pulledBytes(target: TargetKind, bytes: number): void {
    this.#bytes({ target }, bytes);
  }

  webhook(source: WebhookKind | "unknown", status: number): void {
    this.#webhooks({ source, status: String(status) });
  }

  queueDepth(depth: number): void {
    this.#queue(depth);
  }

  ready(ready: boolean): void {
    this.#ready(ready ? 1 : 0);
  }

  scheduleRun(schedule: "warm" | "policy", ok: boolean): void {
    this.#runs({ schedule, result: ok ? "ok" : "failed" });
  }

  scheduleSkipped(schedule: "warm" | "policy"): void {
    this.#skipped({ schedule });
  }

  store(bytes: number, usedPercent: number): void {
    this.#storeBytes(bytes);
    this.#storeUsed(usedPercent);
  }

  storeDiskFull(full: boolean): void {
    this.#diskFull(full ? 1 : 0);
  }

  reclaimed(bytes: number): void {
    this.#reclaimed({}, bytes);
  }

  render(): string {
    return this.#metrics.render();
  }

  /** For tests: the value of one series. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.#metrics.value(name, labels);
  }
}
