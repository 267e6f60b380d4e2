/**
 * What the workload pre-pull reports: typed events for the agent's log and status (never
 * printed here), and Kubernetes Events on the objects it acts on (core/v1, so
 * `kubectl describe` shows them).
 */
import { randomBytes } from "node:crypto";
import { CoreV1Api, type KubeConfig, type V1ObjectReference } from "@kubernetes/client-node";

export type WorkloadPrePullEvent =
  | { readonly type: "leader"; readonly leading: boolean; readonly identity: string }
  | {
      readonly type: "rollout";
      readonly workload: string;
      readonly prepull: string;
      readonly images: readonly string[];
    }
  | { readonly type: "grant"; readonly prepull: string; readonly nodes: readonly string[] }
  | {
      readonly type: "gate";
      readonly workload: string;
      readonly reason: string;
      readonly message: string;
    }
  | {
      readonly type: "pull";
      readonly prepull: string;
      readonly image: string;
      readonly state: "present" | "failed";
      readonly reason?: string;
    }
  | { readonly type: "error"; readonly where: string; readonly error: unknown };

export type EventSink = (event: WorkloadPrePullEvent) => void;

export interface KubeEventInput {
  readonly involved: V1ObjectReference;
  readonly reason: string;
  readonly message: string;
  readonly warning?: boolean;
}

/** Writes core/v1 Events; failures are reported, never thrown (an Event is best effort). */
export class KubeEventRecorder {
  readonly #api: CoreV1Api;
  readonly #instance: string;
  readonly #onError: (error: unknown) => void;

  constructor(kubeConfig: KubeConfig, instance: string, onError: (error: unknown) => void) {
    this.#api = kubeConfig.makeApiClient(CoreV1Api);
    this.#instance = instance;
    this.#onError = onError;
  }

  async record(input: KubeEventInput): Promise<void> {
    const namespace = input.involved.namespace ?? "default";
    const now = new Date();
    try {
      await this.#api.createNamespacedEvent({
        namespace,
        body: {
          metadata: {
            name: `${input.involved.name ?? "object"}.${randomBytes(8).toString("hex")}`,
            namespace,
          },
          involvedObject: input.involved,
          reason: input.reason,
          message: input.message,
          type: input.warning === true ? "Warning" : "Normal",
          source: { component: "ferry" },
          reportingComponent: "ferry.dev/agent",
          reportingInstance: this.#instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (error) {
      this.#onError(error);
    }
  }
}
