/**
 * The elected half: watches the five workload kinds, the nodes and the rollout PrePulls; when a
 * pod template's images change it opens a rollout (one PrePull in the workload's namespace),
 * works out which nodes may run the workload, hands out pull grants within the cluster-wide
 * budget, and holds/releases gated Deployments. Level-triggered: every pass recomputes the
 * wanted state from the caches, so a missed event is healed by the next one.
 */
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
  type V1Node,
} from "@kubernetes/client-node";
import { allocateGrants, type RolloutDemand } from "./budget.ts";
import { DAEMONSET_TOLERATIONS, evaluateEligibility } from "./eligibility.ts";
import type { EventRecorder } from "../events.ts";
import type { EventSink } from "./events.ts";
import { decideGate, type GateDecision, HELD_FOR_ANNOTATION } from "./gate.ts";
import {
  GATE_RECORD_ANNOTATION,
  GRANTS_ANNOTATION,
  nodeProgress,
  type NodeStatus,
  type PrePullObject,
  readGateRecord,
  readGrants,
  rolloutPrePullReflector,
  WORKLOAD_ANNOTATION,
  WORKLOAD_UID_LABEL,
  writeGrants,
} from "./prepull.ts";
import { applyGate, gateOutcome, recordGate } from "./gate-writes.ts";
import { RolloutPrePullWrites } from "./prepull-writes.ts";
import type { ClusterNodes } from "../cluster-nodes.ts";
import { CollectionWatch } from "../watcher.ts";
import {
  imageSetHash,
  imagesChanged,
  rolloutInProgress,
  rolloutName,
  toWorkload,
  WORKLOAD_KINDS,
  WORKLOAD_RESOURCES,
  type Workload,
  type WorkloadKind,
  type WorkloadObject,
  workloadKey,
} from "./workload.ts";

export interface RolloutControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly budget: number;
  readonly gateTimeoutMs: number;
  readonly staleGrantMs: number;
  readonly retryFailedAfterMs: number;
  readonly resyncMs: number;
  readonly ignoreTaintKeys: readonly string[];
  readonly recorder: EventRecorder;
  readonly onEvent: EventSink;
  /** Every Node, shared with the NodeImages controller; its owner starts and stops it. */
  readonly nodes: ClusterNodes;
  /** A node's report in its NodeImages status (from the NodeImages controller's watch). */
  readonly nodeReport?: (node: string) => NodeStatus | undefined;
}

interface Rollout {
  readonly name: string;
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly workloadName: string;
  readonly images: readonly string[];
  readonly created: number;
}

export class RolloutController {
  readonly #options: RolloutControllerOptions;
  readonly #apps: AppsV1Api;
  readonly #batch: BatchV1Api;
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #writes: RolloutPrePullWrites;
  readonly #workloads = new Map<WorkloadKind, CollectionWatch<WorkloadObject & KubernetesObject>>();
  readonly #nodes: ClusterNodes;
  readonly #unsubscribe: () => void;
  readonly #prepulls: CollectionWatch<PrePullObject>;
  /** The current rollout of each workload, by workloadKey. */
  readonly #rollouts = new Map<string, Rollout>();
  #synced = false;
  #stopped = false;
  #pass: Promise<void> = Promise.resolve();
  #passQueued = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RolloutControllerOptions) {
    this.#options = options;
    const kc = options.kubeConfig;
    this.#apps = kc.makeApiClient(AppsV1Api);
    this.#batch = kc.makeApiClient(BatchV1Api);
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#writes = new RolloutPrePullWrites(this.#custom, this.#core, options.onEvent);
    const onError = (where: string) => (error: unknown) =>
      options.onEvent({ type: "error", where, error });
    for (const kind of WORKLOAD_KINDS) {
      const { group, version, plural } = WORKLOAD_RESOURCES[kind];
      this.#workloads.set(
        kind,
        new CollectionWatch<WorkloadObject & KubernetesObject>({
          config: kc,
          path: `/apis/${group}/${version}/${plural}`,
          list: () => this.#listWorkloads(kind),
          onChange: () => {},
          onDelta: (type, object, previous) => this.#onWorkload(kind, type, object, previous),
          onError: onError(`watch ${plural}`),
          retryFirstList: true,
        }),
      );
    }
    this.#nodes = options.nodes;
    this.#unsubscribe = options.nodes.onChange(() => this.#kick());
    this.#prepulls = rolloutPrePullReflector(
      kc,
      this.#custom,
      () => this.#kick(),
      onError("watch prepulls"),
    );
  }

  async start(): Promise<void> {
    await Promise.all([
      ...[...this.#workloads.values()].map((r) => r.start()),
      this.#nodes.start(),
      this.#prepulls.start(),
    ]);
    if (this.#stopped) return;
    this.#adopt();
    this.#synced = true;
    this.#kick();
    this.#timer = setInterval(() => this.#kick(), this.#options.resyncMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const r of this.#workloads.values()) r.stop();
    this.#unsubscribe();
    this.#prepulls.stop();
    await this.#pass;
  }

  #listWorkloads(kind: WorkloadKind): Promise<{ items: (WorkloadObject & KubernetesObject)[] }> {
    switch (kind) {
      case "Deployment":
        return this.#apps.listDeploymentForAllNamespaces({});
      case "StatefulSet":
        return this.#apps.listStatefulSetForAllNamespaces({});
      case "DaemonSet":
        return this.#apps.listDaemonSetForAllNamespaces({});
      case "Job":
        return this.#batch.listJobForAllNamespaces({});
      case "CronJob":
        return this.#batch.listCronJobForAllNamespaces({});
    }
  }

  /** Rollouts in progress when this instance was elected: the PrePulls matching current templates. */
  #adopt(): void {
    for (const prepull of this.#prepulls.items) {
      const [kind, name] = (prepull.metadata.annotations?.[WORKLOAD_ANNOTATION] ?? "").split("/");
      const namespace = prepull.metadata.namespace ?? "default";
      if (!WORKLOAD_KINDS.includes(kind as WorkloadKind) || name === undefined) continue;
      const object = this.#workloads.get(kind as WorkloadKind)?.get(namespace, name);
      if (object === undefined) continue;
      const w = toWorkload(kind as WorkloadKind, object);
      if (imageSetHash(w.images) !== imageSetHash(prepull.spec.images)) continue;
      if (w.uid !== prepull.metadata.labels?.[WORKLOAD_UID_LABEL]) continue;
      this.#rollouts.set(workloadKey(w), {
        name: prepull.metadata.name,
        kind: w.kind,
        namespace,
        workloadName: w.name,
        images: w.images,
        created: Date.parse(prepull.metadata.creationTimestamp ?? "") || Date.now(),
      });
    }
    // Workloads their own controller is still rolling out (a change made while no leader ran,
    // or before ferry started) are pre-pulled as if the change had been seen.
    for (const kind of WORKLOAD_KINDS) {
      for (const object of this.#workloads.get(kind)?.items ?? []) {
        const w = toWorkload(kind, object);
        if (this.#rollouts.has(workloadKey(w)) || w.images.length === 0) continue;
        if (rolloutInProgress(kind, object)) this.#openRollout(w);
      }
    }
  }

  #onWorkload(
    kind: WorkloadKind,
    type: "ADDED" | "MODIFIED" | "DELETED",
    object: WorkloadObject,
    previous: WorkloadObject | undefined,
  ): void {
    // The first list is the baseline: only changes seen after it open rollouts.
    if (!this.#synced) return;
    const w = toWorkload(kind, object);
    const key = workloadKey(w);
    if (type === "DELETED") {
      this.#rollouts.delete(key);
      this.#kick();
      return;
    }
    // A Job a CronJob created runs the CronJob's template, which was pre-pulled as the CronJob.
    if (kind === "Job" && object.metadata?.ownerReferences?.some((o) => o.kind === "CronJob"))
      return;
    const before = previous === undefined ? [] : toWorkload(kind, previous).images;
    if (w.images.length > 0 && imagesChanged(before, w.images)) this.#openRollout(w);
    this.#kick();
  }

  #openRollout(w: Workload): void {
    const rollout: Rollout = {
      name: rolloutName(w, w.images),
      kind: w.kind,
      namespace: w.namespace,
      workloadName: w.name,
      images: w.images,
      created: Date.now(),
    };
    this.#rollouts.set(workloadKey(w), rollout);
    this.#options.onEvent({
      type: "rollout",
      workload: workloadKey(w),
      prepull: rollout.name,
      images: w.images,
    });
  }

  #kick(): void {
    if (!this.#synced || this.#stopped || this.#passQueued) return;
    this.#passQueued = true;
    this.#pass = this.#pass.then(async () => {
      this.#passQueued = false;
      if (this.#stopped) return;
      try {
        await this.#reconcile();
      } catch (error) {
        this.#options.onEvent({ type: "error", where: "reconcile", error });
      }
    });
  }

  #workload(rollout: Rollout): Workload | undefined {
    const object = this.#workloads.get(rollout.kind)?.get(rollout.namespace, rollout.workloadName);
    return object === undefined ? undefined : toWorkload(rollout.kind, object);
  }

  #eligibleNodes(w: Workload): string[] {
    const extra = w.kind === "DaemonSet" ? { extraTolerations: DAEMONSET_TOLERATIONS } : {};
    return this.#nodes.items
      .filter((node) => isReady(node))
      .filter(
        (node) =>
          evaluateEligibility(w.podSpec, node, {
            ignoreTaintKeys: this.#options.ignoreTaintKeys,
            ...extra,
          }).eligible,
      )
      .map((node) => node.metadata?.name ?? "")
      .filter((name) => name !== "")
      .sort();
  }

  async #reconcile(): Promise<void> {
    const now = Date.now();
    const current = new Map<
      string,
      { rollout: Rollout; workload: Workload; prepull: PrePullObject; eligible: string[] }
    >();
    const demands: RolloutDemand[] = [];
    const ordered = [...this.#rollouts].sort(([, a], [, b]) => a.created - b.created);
    for (const [key, rollout] of ordered) {
      const workload = this.#workload(rollout);
      if (
        workload === undefined ||
        imageSetHash(workload.images) !== imageSetHash(rollout.images)
      ) {
        if (workload === undefined) this.#rollouts.delete(key);
        continue;
      }
      const prepull =
        this.#prepulls.get(rollout.namespace, rollout.name) ??
        (await this.#writes.create(rollout.name, workload).catch((error: unknown) => {
          // One namespace refusing (quota, admission) must not stall the other rollouts.
          this.#options.onEvent({ type: "error", where: `create prepull ${key}`, error });
          return undefined;
        }));
      if (prepull === undefined) continue;
      const eligible = this.#eligibleNodes(workload);
      current.set(key, { rollout, workload, prepull, eligible });
      demands.push({
        id: key,
        eligible,
        granted: readGrants(prepull),
        progress: new Map(
          eligible.map((node) => [node, nodeProgress(prepull, node, this.#options.nodeReport)]),
        ),
      });
    }
    // Gates first: a hold that lands sooner lets fewer new pods start before it.
    await this.#gates(current, now);
    const grants = allocateGrants(demands, {
      budget: this.#options.budget,
      now,
      staleAfterMs: this.#options.staleGrantMs,
      retryFailedAfterMs: this.#options.retryFailedAfterMs,
    });
    for (const [key, entry] of current) {
      const wanted = grants.get(key) ?? new Map<string, number>();
      if (writeGrants(wanted) !== writeGrants(readGrants(entry.prepull))) {
        const added = [...wanted.keys()].filter((n) => !readGrants(entry.prepull).has(n));
        try {
          await this.#writes.annotate(entry.prepull, { [GRANTS_ANNOTATION]: writeGrants(wanted) });
        } catch (error) {
          this.#options.onEvent({ type: "error", where: `grant ${entry.rollout.name}`, error });
          continue;
        }
        if (added.length > 0) {
          this.#options.onEvent({ type: "grant", prepull: entry.rollout.name, nodes: added });
        }
      }
    }
    await this.#deleteSuperseded(current);
  }

  async #gates(
    current: ReadonlyMap<
      string,
      { rollout: Rollout; workload: Workload; prepull: PrePullObject; eligible: string[] }
    >,
    now: number,
  ): Promise<void> {
    const deployments = this.#workloads.get("Deployment")?.items ?? [];
    for (const object of deployments) {
      const w = toWorkload("Deployment", object);
      const entry = current.get(workloadKey(w));
      if (entry === undefined && w.annotations[HELD_FOR_ANNOTATION] === undefined) continue;
      const rollout =
        entry === undefined
          ? undefined
          : {
              name: entry.rollout.name,
              complete: entry.eligible.every(
                (node) =>
                  nodeProgress(entry.prepull, node, this.#options.nodeReport) === "complete",
              ),
              record: readGateRecord(entry.prepull),
            };
      const decide = (d: V1Deployment): GateDecision =>
        decideGate({
          annotations: d.metadata?.annotations ?? {},
          paused: d.spec?.paused === true,
          rollout,
          now,
          timeoutMs: this.#options.gateTimeoutMs,
        });
      const decision = decide(object as V1Deployment);
      if (decision.action === "none") continue;
      try {
        const applied = await applyGate(this.#apps, object as V1Deployment, decide);
        if (applied.action !== "none") await this.#afterGate(w, applied, entry?.prepull);
      } catch (error) {
        this.#options.onEvent({ type: "error", where: `gate ${workloadKey(w)}`, error });
      }
    }
  }

  async #afterGate(
    w: Workload,
    decision: GateDecision,
    prepull: PrePullObject | undefined,
  ): Promise<void> {
    const outcome = gateOutcome(decision, this.#options.gateTimeoutMs);
    if (outcome === undefined) return;
    if (prepull !== undefined) {
      await this.#writes.annotate(prepull, { [GATE_RECORD_ANNOTATION]: outcome.record });
    }
    this.#options.onEvent({
      type: "gate",
      workload: workloadKey(w),
      reason: outcome.reason,
      message: outcome.message,
    });
    recordGate(this.#options.recorder, w, outcome);
  }

  /** Rollout PrePulls that are no workload's current rollout any more. */
  async #deleteSuperseded(current: ReadonlyMap<string, { rollout: Rollout }>): Promise<void> {
    const live = new Set(
      [...current.values()].map(({ rollout }) => `${rollout.namespace}/${rollout.name}`),
    );
    const pending = new Set([...this.#rollouts.values()].map((r) => `${r.namespace}/${r.name}`));
    for (const prepull of this.#prepulls.items) {
      const id = `${prepull.metadata.namespace ?? "default"}/${prepull.metadata.name}`;
      if (live.has(id) || pending.has(id)) continue;
      const [kind, name] = (prepull.metadata.annotations?.[WORKLOAD_ANNOTATION] ?? "").split("/");
      const object =
        name === undefined
          ? undefined
          : this.#workloads.get(kind as WorkloadKind)?.get(prepull.metadata.namespace, name);
      // Keep the PrePull of a workload whose images still match it (its finished rollout).
      if (object !== undefined) {
        const w = toWorkload(kind as WorkloadKind, object);
        if (imageSetHash(w.images) === imageSetHash(prepull.spec.images)) continue;
      }
      await this.#writes.delete(prepull);
    }
  }
}

/** A node whose kubelet reports NotReady or Unknown will not pull; no grant is wasted on it. */
function isReady(node: V1Node): boolean {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  return ready === undefined || ready.status === "True";
}
