/**
 * Workload pre-pull for `ferry agent --kubernetes`: the one agent holding the Lease runs the
 * controllers (watch workloads, decide who pulls what, gate Deployments; write the NodeImages,
 * where a node's grants reach its agent). Only agents reporting the previous way ("prepull")
 * run the node half here (watch every rollout PrePull, write their status.nodes entry).
 */
import { hostname } from "node:os";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { FerryError, type Metrics } from "../../observe/index.ts";
import { DEFAULT_STARTUP_TAINT_KEY } from "../names.ts";
import type { Target } from "../../runtime/index.ts";
import { DEFAULT_PULL_BUDGET } from "./budget.ts";
import { RolloutController } from "./controller.ts";
import { EventRecorder } from "../events.ts";
import type { EventSink } from "./events.ts";
import { DEFAULT_GATE_TIMEOUT_MS } from "./gate.ts";
import { DEFAULT_LEASE_DURATION_MS, DEFAULT_LEASE_NAME, LeaderElection } from "./lease.ts";
import { NodeRunner } from "./node-runner.ts";
import { ClusterNodes } from "../cluster-nodes.ts";
import { NodeImagesController } from "../node-images-controller.ts";
import type { ReportMode } from "../node-assignments.ts";

export {
  allocateGrants,
  DEFAULT_PULL_BUDGET,
  type NodeProgress,
  type RolloutDemand,
} from "./budget.ts";
export { DAEMONSET_TOLERATIONS, type Eligibility, evaluateEligibility } from "./eligibility.ts";
export type { WorkloadPrePullEvent } from "./events.ts";
export {
  DEFAULT_GATE_TIMEOUT_MS,
  decideGate,
  GATE_ANNOTATION,
  GATE_VALUE,
  GateReason,
  HELD_FOR_ANNOTATION,
  HELD_SINCE_ANNOTATION,
} from "./gate.ts";
export { DEFAULT_LEASE_NAME } from "./lease.ts";
export { GRANTS_ANNOTATION, WORKLOAD_ANNOTATION, WORKLOAD_PREPULL_LABEL } from "./prepull.ts";
export { podSpecImages, toWorkload, WORKLOAD_KINDS, type WorkloadKind } from "./workload.ts";

export interface WorkloadPrePullOptions {
  readonly kubeConfig: KubeConfig;
  /** This agent's node (NODE_NAME); the node half pulls only for it. */
  readonly nodeName: string;
  /** The node's runtime (CRI target); without one this instance only campaigns and decides. */
  readonly target?: Target;
  /** Namespace of the Lease (the agent's own, POD_NAMESPACE). */
  readonly namespace: string;
  /** Candidate identity in the Lease; `<nodeName>_<hostname>_<pid>` by default. */
  readonly identity?: string;
  readonly leaseName?: string;
  readonly leaseDurationMs?: number;
  /** Nodes pulling for rollouts at once, cluster-wide (default 3). */
  readonly budget?: number;
  /** How long a gated Deployment is held at most (default 10 min). */
  readonly gateTimeoutMs?: number;
  /** A grant not finished in this time stops counting against the budget (default 10 min). */
  readonly staleGrantMs?: number;
  /** A node whose pull failed is granted again (and retries) after this long (default 1 min). */
  readonly retryFailedAfterMs?: number;
  /** How often the controller re-evaluates without a change (timeouts, stale grants); 2 s. */
  readonly resyncMs?: number;
  /** The registry for the NodeImages controller's metrics (the agent's /metrics). */
  readonly metrics?: Metrics;
  /** The NodeImages controller's least time between passes (default 1 s). */
  readonly nodeImagesIntervalMs?: number;
  /**
   * Where this node's agent reports: "nodeimages" (its NodeImages; the node agent pulls what the
   * controller grants there, so no runner here) or "prepull" (default: the previous version's
   * runner, watching every rollout PrePull and writing its status.nodes entry).
   */
  readonly report?: ReportMode;
  /**
   * Whether the leader also runs the rollout controller (watch workloads, grants, the gate);
   * default true. Off, it still writes the NodeImages that "nodeimages" agents wait for.
   */
  readonly rollouts?: boolean;
  /** Taint keys ignored when deciding where a workload may run (ferry's startup taint). */
  readonly startupTaintKeys?: readonly string[];
  readonly onEvent?: EventSink;
}

export interface WorkloadPrePull {
  /** Whether this instance holds the Lease and runs the controller now. */
  readonly isLeader: () => boolean;
  stop(): Promise<void>;
}

export async function startWorkloadPrePull(
  options: WorkloadPrePullOptions,
): Promise<WorkloadPrePull> {
  if (options.nodeName.trim() === "") {
    throw new FerryError("FERRY_INVALID_ARGUMENT", "workload pre-pull needs the node name", {
      hint: "set NODE_NAME from the downward API (fieldRef: spec.nodeName)",
    });
  }
  const onEvent: EventSink = options.onEvent ?? (() => {});
  const identity = options.identity ?? `${options.nodeName}_${hostname()}_${process.pid}`;
  const recorder = new EventRecorder(options.kubeConfig.makeApiClient(CoreV1Api), {
    namespace: options.namespace,
    host: options.nodeName,
    onError: (error) => onEvent({ type: "error", where: "event", error }),
  });
  const runner =
    options.target === undefined || options.report === "nodeimages"
      ? undefined
      : new NodeRunner({
          kubeConfig: options.kubeConfig,
          nodeName: options.nodeName,
          target: options.target,
          onEvent,
        });
  let controller: RolloutController | undefined;
  let nodeImages: NodeImagesController | undefined;
  let leaderNodes: ClusterNodes | undefined;
  let controllerDone: Promise<void> = Promise.resolve();
  let stopping = false;
  const election = new LeaderElection({
    kubeConfig: options.kubeConfig,
    namespace: options.namespace,
    name: options.leaseName ?? DEFAULT_LEASE_NAME,
    identity,
    leaseDurationMs: options.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS,
    onStartedLeading: (signal) => {
      if (stopping) return;
      onEvent({ type: "leader", leading: true, identity });
      // One all-node list and watch for both controllers.
      const nodes = new ClusterNodes(options.kubeConfig, (error) =>
        onEvent({ type: "error", where: "watch nodes", error }),
      );
      let n: NodeImagesController | undefined;
      const c =
        options.rollouts === false
          ? undefined
          : new RolloutController({
              nodes,
              nodeReport: (node) => n?.nodeReport(node),
              kubeConfig: options.kubeConfig,
              budget: options.budget ?? DEFAULT_PULL_BUDGET,
              gateTimeoutMs: options.gateTimeoutMs ?? DEFAULT_GATE_TIMEOUT_MS,
              staleGrantMs: options.staleGrantMs ?? 10 * 60_000,
              retryFailedAfterMs: options.retryFailedAfterMs ?? 60_000,
              resyncMs: options.resyncMs ?? 2_000,
              ignoreTaintKeys: options.startupTaintKeys ?? [DEFAULT_STARTUP_TAINT_KEY],
              recorder,
              onEvent,
            });
      // The same leader writes every node's NodeImages and the PrePulls' aggregate status.
      n = new NodeImagesController({
        kubeConfig: options.kubeConfig,
        nodes,
        ...(options.nodeImagesIntervalMs === undefined
          ? {}
          : { intervalMs: options.nodeImagesIntervalMs }),
        recorder,
        ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
        onError: (where, error) => onEvent({ type: "error", where, error }),
      });
      controller = c;
      nodeImages = n;
      leaderNodes = nodes;
      const started = Promise.all([
        c
          ?.start()
          .catch((error: unknown) => onEvent({ type: "error", where: "controller", error })),
        n.start().catch((error: unknown) => onEvent({ type: "error", where: "nodeimages", error })),
      ]);
      signal.addEventListener("abort", () => {
        controllerDone = Promise.all([c?.stop(), n.stop(), started]).then(() => nodes.stop());
        if (controller === c) controller = undefined;
        if (nodeImages === n) nodeImages = undefined;
        if (leaderNodes === nodes) leaderNodes = undefined;
      });
    },
    onStoppedLeading: () => onEvent({ type: "leader", leading: false, identity }),
    onError: (error) => onEvent({ type: "error", where: "lease", error }),
  });
  await runner?.start();
  election.start();
  return {
    isLeader: () => election.isLeader,
    async stop() {
      stopping = true;
      // The controller stops writing before the Lease is given up, so a successor never
      // overlaps with it.
      const c = controller;
      const n = nodeImages;
      const nodes = leaderNodes;
      controller = undefined;
      nodeImages = undefined;
      leaderNodes = undefined;
      if (c !== undefined || n !== undefined)
        controllerDone = Promise.all([c?.stop(), n?.stop()]).then(() => nodes?.stop());
      await controllerDone;
      await election.stop();
      await controllerDone;
      await runner?.stop();
    },
  };
}
