/**
 * What the workload pre-pull reports to the agent (its log and status): typed events, never
 * printed here. Kubernetes Events on the Deployments go through kube's EventRecorder.
 */

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
