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
import { DEFAULT_STARTUP_TAINT_KEY } from "./names.ts";
import {
  type KubeAgent,
  type KubeAgentOptions,
  startKubeAgent,
  type TaintMode,
} from "./node-agent.ts";
import { startWorkloadPrePull, type WorkloadPrePull } from "./workload/index.ts";

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
  readonly stateDir?: string | undefined;
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
  /** Wraps the opened runtime targets and starts what needs them (workload pre-pull). */
  wrap(opened: OpenedTargets): Promise<OpenedTargets>;
}

export async function startKubernetesMode(options: KubernetesModeOptions): Promise<KubernetesMode> {
  const env = options.env ?? process.env;
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
    imageFsPath: imageFsPath ?? null,
  });
  return {
    nodeName,
    listFile: agent.listFile,
    agent,
    async wrap(opened) {
      const targets: Target[] = opened.targets.map((t) => agent.wrapTarget(t));
      const runtime = targets.find((t) => t.kind !== "store");
      if (runtime === undefined)
        options.log({
          level: "warn",
          msg: "no runtime target: the startup taint stays (required images are looked for in the runtime)",
        });
      let workloads: WorkloadPrePull | undefined;
      if (options.workloads !== false) {
        workloads = await startWorkloadPrePull({
          kubeConfig: client.config,
          nodeName,
          ...(runtime === undefined ? {} : { target: runtime }),
          namespace: client.namespace,
          ...(key === "none" ? {} : { startupTaintKeys: [key] }),
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
