/**
 * The PrePull objects that carry a workload rollout from the elected instance to the nodes, in
 * the shared PrePull shape (ferry.dev/v1alpha1): spec.images and spec.imagePullSecrets say what
 * to pull; the `ferry.dev/grants` annotation says which nodes may pull now (the budget); each
 * node's agent reports in status.nodes[node] what its runtime holds.
 */
import type { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { NodeProgress } from "./budget.ts";
import type { GateRecord } from "./gate.ts";
import { CollectionWatch } from "../watcher.ts";

import {
  PREPULL_GROUP,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  WORKLOAD_PREPULL_LABEL,
} from "../names.ts";

export {
  PREPULL_GROUP,
  PREPULL_KIND,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  WORKLOAD_PREPULL_LABEL,
} from "../names.ts";
export const PREPULL_API_VERSION = `${PREPULL_GROUP}/${PREPULL_VERSION}`;
/** The uid of the workload a rollout PrePull belongs to. */
export const WORKLOAD_UID_LABEL = "ferry.dev/workload-uid";
/** `Kind/name` of that workload, for people and for takeover. */
export const WORKLOAD_ANNOTATION = "ferry.dev/workload";
/** JSON object node name → RFC 3339 time the node was allowed to pull. */
export const GRANTS_ANNOTATION = "ferry.dev/grants";
/** What the rollout gate did for this rollout (held, released, timeout, skipped). */
export const GATE_RECORD_ANNOTATION = "ferry.dev/gate";

import type { NodeStatus } from "../prepull.ts";

export type { NodeImageStatus, NodeStatus } from "../prepull.ts";

export interface PrePullObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: unknown[];
  };
  spec: {
    images: string[];
    required?: boolean;
    nodeSelector?: Record<string, string>;
    imagePullSecrets?: { name: string }[];
    platform?: string;
  };
  status?: {
    nodes?: Record<string, NodeStatus>;
    ready?: string;
  };
}

/** Grants read from the annotation; a malformed annotation grants nothing. */
export function readGrants(prepull: PrePullObject): Map<string, number> {
  const grants = new Map<string, number>();
  const text = prepull.metadata.annotations?.[GRANTS_ANNOTATION];
  if (text === undefined) return grants;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return grants;
    for (const [node, at] of Object.entries(parsed)) {
      const ms = typeof at === "string" ? Date.parse(at) : Number.NaN;
      if (Number.isFinite(ms)) grants.set(node, ms);
    }
  } catch {
    return grants;
  }
  return grants;
}

export function writeGrants(grants: ReadonlyMap<string, number>): string {
  const entries = [...grants].sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify(
    Object.fromEntries(entries.map(([n, at]) => [n, new Date(at).toISOString()])),
  );
}

export function readGateRecord(prepull: PrePullObject): GateRecord | undefined {
  const value = prepull.metadata.annotations?.[GATE_RECORD_ANNOTATION];
  return value === "held" || value === "released" || value === "timeout" || value === "skipped"
    ? value
    : undefined;
}

/**
 * A node's progress on this PrePull's images, from what its agent reported: in its NodeImages
 * status (`report`) or, an agent of the previous version, in the PrePull's status.nodes.
 */
export function nodeProgress(
  prepull: PrePullObject,
  node: string,
  report: (node: string) => NodeStatus | undefined = () => undefined,
): NodeProgress {
  const reports = [report(node), prepull.status?.nodes?.[node]];
  // The report naming every image wins: a NodeImages status may predate the grant.
  const entry =
    reports.find((r) =>
      prepull.spec.images.every((image) => r?.images.some((i) => i.image === image)),
    ) ?? reports.find((r) => r !== undefined);
  if (entry === undefined) return "pending";
  const states = new Map(entry.images.map((i) => [i.image, i.state]));
  const wanted = prepull.spec.images.map((image) => states.get(image));
  if (wanted.every((s) => s === "present")) return "complete";
  if (wanted.some((s) => s === "failed") && !wanted.some((s) => s === "pulling" || s === undefined))
    return "failed";
  return "pending";
}

/** List+watch of the rollout PrePulls (all namespaces), for the controller and every node. */
export function rolloutPrePullReflector(
  kubeConfig: KubeConfig,
  custom: CustomObjectsApi,
  onChange: () => void,
  onError: (error: unknown) => void,
): CollectionWatch<PrePullObject> {
  const labelSelector = `${WORKLOAD_PREPULL_LABEL}=true`;
  return new CollectionWatch<PrePullObject>({
    config: kubeConfig,
    path: `/apis/${PREPULL_GROUP}/${PREPULL_VERSION}/${PREPULL_PLURAL}`,
    labelSelector,
    list: async () =>
      (await custom.listCustomObjectForAllNamespaces({
        group: PREPULL_GROUP,
        version: PREPULL_VERSION,
        resourcePlural: PREPULL_PLURAL,
        labelSelector,
      })) as { items: PrePullObject[] },
    onChange,
    onError,
    retryFirstList: true,
  });
}
