/**
 * Leader election over a coordination.k8s.io/v1 Lease, the way client-go does it: the holder
 * renews `renewTime` every retry period; another candidate takes over only after it has seen
 * the same holder and renewTime unchanged for a whole lease duration (by its own clock, so
 * clock skew between nodes does not matter). Every write carries the Lease's resourceVersion,
 * so two candidates racing for an expired Lease cannot both win.
 */
import {
  CoordinationV1Api,
  type KubeConfig,
  type V1Lease,
  V1MicroTime,
} from "@kubernetes/client-node";
import { apiStatus as statusCode } from "../api-errors.ts";

export const DEFAULT_LEASE_NAME = "ferry-workload-prepull";
export const DEFAULT_LEASE_DURATION_MS = 15_000;

export interface LeaderElectionOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name?: string;
  readonly identity: string;
  readonly leaseDurationMs?: number;
  /** How often to try to acquire or renew; a third of the lease duration by default. */
  readonly retryPeriodMs?: number;
  /**
   * A leader that has not renewed for this long stops acting; two thirds of the lease duration
   * by default, so it has stopped before any other candidate can see the Lease expire.
   */
  readonly renewDeadlineMs?: number;
  /** Called when this candidate becomes leader; the signal aborts when it stops leading. */
  readonly onStartedLeading: (signal: AbortSignal) => void;
  readonly onStoppedLeading?: () => void;
  readonly onError?: (error: unknown) => void;
}

interface Observed {
  readonly holder: string;
  readonly renew: string;
  /** Local time (ms) when this holder/renew pair was first seen. */
  readonly since: number;
}

export class LeaderElection {
  readonly #options: LeaderElectionOptions;
  readonly #api: CoordinationV1Api;
  readonly #name: string;
  readonly #durationMs: number;
  readonly #retryMs: number;
  readonly #renewDeadlineMs: number;
  #observed: Observed | undefined;
  #leading: AbortController | undefined;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Checks the renew deadline even while a request hangs. */
  #deadlineTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #round: Promise<void> = Promise.resolve();

  constructor(options: LeaderElectionOptions) {
    this.#options = options;
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.#name = options.name ?? DEFAULT_LEASE_NAME;
    this.#durationMs = options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
    this.#retryMs = options.retryPeriodMs ?? Math.max(100, Math.floor(this.#durationMs / 3));
    this.#renewDeadlineMs = options.renewDeadlineMs ?? Math.floor((this.#durationMs * 2) / 3);
  }

  get isLeader(): boolean {
    return this.#leading !== undefined;
  }

  start(): void {
    this.#schedule(0);
    this.#deadlineTimer = setInterval(() => this.#checkRenewDeadline(Date.now()), this.#retryMs);
  }

  /** Stops campaigning; a leader gives the Lease up so another candidate need not wait it out. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#deadlineTimer);
    await this.#round;
    if (this.#leading !== undefined) {
      await this.#release().catch((error: unknown) => this.#options.onError?.(error));
      this.#stopLeading();
    }
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.#tryAcquireOrRenew()
        .catch((error: unknown) => this.#options.onError?.(error))
        .finally(() => this.#schedule(this.#retryMs));
    }, ms);
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const now = Date.now();
    const { namespace } = this.#options;
    let lease: V1Lease | undefined;
    try {
      lease = await this.#api.readNamespacedLease({ name: this.#name, namespace });
    } catch (error) {
      if (statusCode(error) !== 404) {
        this.#checkRenewDeadline(now);
        throw error;
      }
    }
    if (lease === undefined) {
      await this.#write(() =>
        this.#api.createNamespacedLease({
          namespace,
          body: { metadata: { name: this.#name, namespace }, spec: this.#spec(0, now) },
        }),
      );
      return;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    const renew = String(spec.renewTime ?? "");
    if (this.#observed?.holder !== holder || this.#observed.renew !== renew) {
      this.#observed = { holder, renew, since: now };
    }
    const mine = holder === this.#options.identity;
    const durationMs = (spec.leaseDurationSeconds ?? this.#durationMs / 1000) * 1000;
    const expired = holder === "" || now - this.#observed.since >= durationMs;
    if (!mine && !expired) {
      this.#stopLeading();
      return;
    }
    const transitions = (spec.leaseTransitions ?? 0) + (mine ? 0 : 1);
    const next: V1Lease = {
      ...lease,
      spec: {
        ...this.#spec(transitions, now),
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : new V1MicroTime(now),
      },
    };
    await this.#write(() =>
      this.#api.replaceNamespacedLease({ name: this.#name, namespace, body: next }),
    );
  }

  #spec(transitions: number, now: number): NonNullable<V1Lease["spec"]> {
    return {
      holderIdentity: this.#options.identity,
      leaseDurationSeconds: Math.ceil(this.#durationMs / 1000),
      acquireTime: new V1MicroTime(now),
      renewTime: new V1MicroTime(now),
      leaseTransitions: transitions,
    };
  }

  /** A create or replace; a 409 means another candidate wrote first, so this round is lost. */
  async #write(send: () => Promise<V1Lease>): Promise<void> {
    const now = Date.now();
    try {
      const written = await send();
      this.#observed = {
        holder: written.spec?.holderIdentity ?? "",
        renew: String(written.spec?.renewTime ?? ""),
        since: now,
      };
      this.#lastRenew = now;
      this.#startLeading();
    } catch (error) {
      const code = statusCode(error);
      if (code === 409 || code === 422) {
        this.#stopLeading();
        return;
      }
      this.#checkRenewDeadline(now);
      throw error;
    }
  }

  /** A leader that could not renew in time must assume someone else takes over. */
  #checkRenewDeadline(now: number): void {
    if (this.#leading !== undefined && now - this.#lastRenew >= this.#renewDeadlineMs) {
      this.#stopLeading();
    }
  }

  async #release(): Promise<void> {
    const lease = await this.#api.readNamespacedLease({
      name: this.#name,
      namespace: this.#options.namespace,
    });
    if (lease.spec?.holderIdentity !== this.#options.identity) return;
    const body: V1Lease = {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 },
    };
    await this.#api.replaceNamespacedLease({
      name: this.#name,
      namespace: this.#options.namespace,
      body,
    });
  }

  #startLeading(): void {
    if (this.#leading !== undefined || this.#stopped) return;
    this.#leading = new AbortController();
    this.#options.onStartedLeading(this.#leading.signal);
  }

  #stopLeading(): void {
    if (this.#leading === undefined) return;
    this.#leading.abort();
    this.#leading = undefined;
    this.#options.onStoppedLeading?.();
  }
}
