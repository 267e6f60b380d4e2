/**
 * The controller's writes for the rollout gate: a gate decision merge-patched onto the
 * Deployment (re-read and decided again on a conflict), and what each decision records (the
 * Event's reason and message, the PrePull's gate annotation).
 */
import {
  type AppsV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
} from "@kubernetes/client-node";
import { apiStatus } from "../api-errors.ts";
import type { EventRecorder } from "../events.ts";
import {
  type GateDecision,
  GateReason,
  type GateRecord,
  HELD_FOR_ANNOTATION,
  HELD_SINCE_ANNOTATION,
} from "./gate.ts";
import { MAX_CONFLICT_RETRIES } from "./prepull-writes.ts";
import type { Workload } from "./workload.ts";

type Patch = Record<string, unknown>;

/** The merge patch a gate decision writes; undefined when it writes nothing to the Deployment. */
export function gatePatch(decision: GateDecision, now: string): Patch | undefined {
  switch (decision.action) {
    case "hold":
      return {
        metadata: {
          annotations: { [HELD_FOR_ANNOTATION]: decision.rollout, [HELD_SINCE_ANNOTATION]: now },
        },
        spec: { paused: true },
      };
    case "retarget":
      return { metadata: { annotations: { [HELD_FOR_ANNOTATION]: decision.rollout } } };
    case "release":
      return {
        metadata: { annotations: { [HELD_FOR_ANNOTATION]: null, [HELD_SINCE_ANNOTATION]: null } },
        spec: { paused: false },
      };
    case "skip":
    case "none":
      return undefined;
  }
}

/** Writes a gate decision to the Deployment; on conflict re-reads it and decides again. */
export async function applyGate(
  apps: AppsV1Api,
  deployment: V1Deployment,
  decide: (d: V1Deployment) => GateDecision,
): Promise<GateDecision> {
  let d = deployment;
  const name = d.metadata?.name ?? "";
  const namespace = d.metadata?.namespace ?? "default";
  for (let attempt = 0; ; attempt++) {
    const decision = decide(d);
    const patch = gatePatch(decision, new Date().toISOString());
    if (patch === undefined) return decision;
    try {
      await apps.patchNamespacedDeployment(
        {
          name,
          namespace,
          body: {
            ...patch,
            metadata: {
              ...(patch["metadata"] as Patch),
              resourceVersion: d.metadata?.resourceVersion,
            },
          },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      return decision;
    } catch (error) {
      if (apiStatus(error) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw error;
      d = await apps.readNamespacedDeployment({ name, namespace });
    }
  }
}

export interface GateOutcome {
  readonly reason: string;
  readonly message: string;
  readonly record: GateRecord;
}

/** What an applied decision records; undefined for those that record nothing. */
export function gateOutcome(decision: GateDecision, timeoutMs: number): GateOutcome | undefined {
  switch (decision.action) {
    case "none":
    case "retarget":
      return undefined;
    case "hold":
      return {
        reason: GateReason.Hold,
        message: `paused until the new images are present on every eligible node (PrePull ${decision.rollout}); timeout ${Math.round(timeoutMs / 1000)} s`,
        record: "held",
      };
    case "skip":
      return {
        reason: GateReason.Skipped,
        message: "the Deployment was already paused; ferry leaves it to whoever paused it",
        record: "skipped",
      };
    case "release":
      return {
        reason: decision.reason,
        message: decision.message,
        record: decision.reason === GateReason.Timeout ? "timeout" : "released",
      };
  }
}

/** The gate's Event on the Deployment. */
export function recordGate(recorder: EventRecorder, w: Workload, outcome: GateOutcome): void {
  recorder.record({
    involved: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: w.name,
      namespace: w.namespace,
      ...(w.uid === undefined ? {} : { uid: w.uid }),
    },
    reason: outcome.reason,
    message: outcome.message,
    warning: outcome.reason === GateReason.Timeout,
  });
}
