/**
 * `ferry agent --kubernetes` in one place: the API client, the node agent (lists, PrePull
 * status, startup taint, headroom) and the workload pre-pull, composed around the agent's
 * list file and targets so the agent itself knows nothing of Kubernetes.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OpenedTargets } from "../agent/index.ts";
import { FerryError, type Metrics } from "../observe/index.ts";
import type { Target } from "../runtime/index.ts";
import { loadKubeClient } from "./client.ts";
import { withFleet } from "./fleet.ts";
import { DEFAULT_STARTUP_TAINT_KEY } from "./names.ts";
import { DEFAULT_REPORT_MODE, type ReportMode } from "./node-assignments.ts";
import {
  type KubeAgent,
  type KubeAgentOptions,
  startKubeAgent,
  type TaintMode,
} from "./node-agent.ts";
import {
  DEFAULT_GATE_TIMEOUT_MS,
  DEFAULT_PULL_BUDGET,
  startWorkloadPrePull,
  type WorkloadPrePull,
} from "./workload/index.ts";

/** containerd's root: where the CRI image filesystem lives on most nodes. */
export const DEFAULT_IMAGE_FS_PATH = "/var/lib/containerd";

export interface KubernetesModeOptions {
  readonly kubeconfig?: string | undefined;
  /** The agent's own list file, merged with the cluster's lists (optional). */
  readonly listFile?: string | undefined;
  /** "none" turns taint handling off; default DEFAULT_STARTUP_TAINT_KEY. */
  readonly startupTaintKey?: string | undefined;
  readonly taintMode?: TaintMode | undefined;
  /** Default /var/lib/containerd when it exists. */
  readonly imageFsPath?: string | undefined;
  readonly imageGCHighThresholdPercent?: number | undefined;
  /** Workload pre-pull (watch workloads, rollout gate); on by default. */
  readonly workloads?: boolean | undefined;
  /** Nodes pulling for rollouts at once, cluster-wide (default DEFAULT_PULL_BUDGET). */
  readonly prePullBudget?: number | undefined;
  /** How long the rollout gate holds a Deployment at most (default DEFAULT_GATE_TIMEOUT_MS). */
  readonly gateTimeoutMs?: number | undefined;
  readonly stateDir?: string | undefined;
  /** nodeimages (default): the node's own NodeImages; prepull: every PrePull, as before. */
  readonly report?: ReportMode | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly metrics: Metrics;
  readonly log: (entry: Record<string, unknown>) => void;
  readonly estimateBytes?: KubeAgentOptions["estimateBytes"];
}

export interface KubernetesMode {
  readonly nodeName: string;
  /** Give this to the agent as its list file. */
  readonly listFile: string;
  readonly agent: KubeAgent;
  /** The agent's /status with the fleet (images × nodes) and the node's Kubernetes state. */
  extendStatus(doc: Record<string, unknown>): Record<string, unknown>;
  /** Wraps the opened runtime targets and starts what needs them (workload pre-pull). */
  wrap(opened: OpenedTargets): Promise<OpenedTargets>;
}

/** The most nodes a rollout may pull on at once: a sanity bound, far above real clusters' needs. */
export const MAX_PREPULL_BUDGET = 10_000;

/** Validates the workload pre-pull budget (a whole number of nodes, 1 or more). */
export function checkPrePullBudget(value: number, option = "--prepull-budget"): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_PREPULL_BUDGET)
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `${option} must be a whole number of nodes from 1 to ${MAX_PREPULL_BUDGET}, got ${JSON.stringify(value)}`,
      {
        hint: `how many nodes may pull a rollout's images at once, cluster-wide (default ${DEFAULT_PULL_BUDGET})`,
      },
    );
  return value;
}

/** Parses `--prepull-budget N`. */
export function parsePrePullBudget(text: string, option = "--prepull-budget"): number {
  const t = text.trim();
  if (!/^\d+$/.test(t))
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `${option} must be a whole number of nodes, got "${text}"`,
      {
        hint: `how many nodes may pull a rollout's images at once, cluster-wide (default ${DEFAULT_PULL_BUDGET})`,
      },
    );
  return checkPrePullBudget(Number(t), option);
}

/** Validates the rollout gate's timeout: more than zero. */
export function checkGateTimeout(ms: number, option = "--gate-timeout"): number {
  if (!Number.isSafeInteger(ms) || ms < 1000)
    throw new FerryError("FERRY_INVALID_ARGUMENT", `${option} must be at least 1s, got ${ms} ms`, {
      hint: `how long a gated Deployment is held at most, e.g. 10m (default ${DEFAULT_GATE_TIMEOUT_MS / 60_000}m)`,
    });
  return ms;
}

export async function startKubernetesMode(options: KubernetesModeOptions): Promise<KubernetesMode> {
  const env = options.env ?? process.env;
  if (options.prePullBudget !== undefined) checkPrePullBudget(options.prePullBudget);
  if (options.gateTimeoutMs !== undefined) checkGateTimeout(options.gateTimeoutMs);
  const nodeName = env["NODE_NAME"] ?? "";
  if (nodeName.trim() === "")
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      "--kubernetes needs the node's name in NODE_NAME",
      {
        hint: "in the DaemonSet: env NODE_NAME valueFrom fieldRef fieldPath spec.nodeName",
      },
    );
  const client = loadKubeClient({ kubeconfig: options.kubeconfig, env });
  const report = options.report ?? DEFAULT_REPORT_MODE;
  const key = options.startupTaintKey ?? DEFAULT_STARTUP_TAINT_KEY;
  const imageFsPath =
    options.imageFsPath ?? (existsSync(DEFAULT_IMAGE_FS_PATH) ? DEFAULT_IMAGE_FS_PATH : undefined);
  const agent = await startKubeAgent({
    client,
    nodeName,
    namespace: client.namespace,
    baseListFile: options.listFile,
    stateDir: options.stateDir ?? join(tmpdir(), "ferry-kubernetes"),
    startupTaintKey: key === "none" ? undefined : key,
    taintMode: options.taintMode ?? "bootstrap",
    imageFsPath,
    // Not set explicitly: where the runtime says its images are (CRI ImageFsInfo) comes first.
    imageFsFromRuntime: options.imageFsPath === undefined,
    report,
    ...(options.imageGCHighThresholdPercent === undefined
      ? {}
      : { imageGCHighThresholdPercent: options.imageGCHighThresholdPercent }),
    ...(options.estimateBytes === undefined ? {} : { estimateBytes: options.estimateBytes }),
    metrics: options.metrics,
    log: options.log,
  });
  options.log({
    level: "info",
    msg: "kubernetes mode",
    node: nodeName,
    apiServer: client.source,
    namespace: client.namespace,
    startupTaint: key,
    report,
    imageFsPath: imageFsPath ?? null,
    workloadPrePull:
      options.workloads === false
        ? false
        : {
            budget: options.prePullBudget ?? DEFAULT_PULL_BUDGET,
            gateTimeoutMs: options.gateTimeoutMs ?? DEFAULT_GATE_TIMEOUT_MS,
          },
  });
  return {
    nodeName,
    listFile: agent.listFile,
    agent,
    extendStatus: (doc) => withFleet(doc, agent.fleet(), { ...agent.status() }),
    async wrap(opened) {
      const targets: Target[] = opened.targets.map((t) => agent.wrapTarget(t));
      const runtime = targets.find((t) => t.kind !== "store");
      if (runtime === undefined)
        options.log({
          level: "warn",
          msg: "no runtime target: the startup taint stays (required images are looked for in the runtime)",
        });
      let workloads: WorkloadPrePull | undefined;
      // Without workload pre-pull the Lease is still campaigned for when the nodes report to
      // NodeImages: someone must write them.
      if (options.workloads !== false || report === "nodeimages") {
        workloads = await startWorkloadPrePull({
          rollouts: options.workloads !== false,
          kubeConfig: client.config,
          nodeName,
          ...(runtime === undefined ? {} : { target: runtime }),
          namespace: client.namespace,
          report,
          ...(key === "none" ? {} : { startupTaintKeys: [key] }),
          ...(options.prePullBudget === undefined ? {} : { budget: options.prePullBudget }),
          ...(options.gateTimeoutMs === undefined ? {} : { gateTimeoutMs: options.gateTimeoutMs }),
          metrics: options.metrics,
          onEvent: (event) => {
            if (event.type === "error")
              options.log({
                level: "warn",
                msg: `workload pre-pull: ${event.where}`,
                error: String(event.error),
              });
            else options.log({ level: "info", msg: `workload pre-pull: ${event.type}`, ...event });
          },
        });
      }
      return {
        ...opened,
        targets,
        async close() {
          await workloads?.stop();
          await agent.stop();
          await opened.close();
        },
      };
    },
  };
}
