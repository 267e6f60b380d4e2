/**
 * NodeImages (ferry.dev/v1alpha1, cluster-scoped, one per node, named after it): the controller
 * writes in spec the images the PrePulls selecting the node name, and the node's agent writes in
 * status what its runtime holds. Each agent reads and writes only its own, so its API cost does
 * not grow with the fleet. The pure parts: the spec for a node, and a PrePull's aggregate.
 */
import { createHash } from "node:crypto";
import { matchingPrePulls } from "./image-sources.ts";
import type { NodeStatus, PrePull } from "./prepull.ts";
import { prepullKey } from "./prepull.ts";

export interface AssignedImage {
  image: string;
  required: boolean;
  platform?: string;
  /** namespace/name of the PrePulls naming it */
  prepulls: string[];
  /** namespace/name of their imagePullSecrets */
  pullSecrets?: string[];
}

export interface NodeImagesSpec {
  images: AssignedImage[];
  /** labelsHash of the node labels the controller selected by: the agent trusts the spec only for its own */
  nodeLabels: string;
}

export interface NodeImagesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; resourceVersion?: string; uid?: string };
  spec?: NodeImagesSpec;
  status?: NodeStatus;
}

/** A short stable digest of a node's labels. */
export function labelsHash(labels: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash("sha256").update(JSON.stringify(sorted)).digest("hex").slice(0, 16);
}

/**
 * The spec of a node with these labels: the images of the PrePulls selecting it and of the
 * rollout PrePulls granting it (the budget's turn to pull), merged.
 */
export function nodeImagesSpec(
  prepulls: readonly PrePull[],
  labels: Readonly<Record<string, string>>,
  granted: readonly PrePull[] = [],
): NodeImagesSpec {
  const byImage = new Map<string, AssignedImage>();
  for (const p of [...matchingPrePulls(prepulls, labels), ...granted]) {
    const key = prepullKey(p);
    const secrets = (p.spec?.imagePullSecrets ?? [])
      .map((s) => s.name ?? "")
      .filter((name) => name !== "")
      .map((name) => `${p.metadata?.namespace ?? ""}/${name}`);
    for (const image of p.spec?.images ?? []) {
      const platform = p.spec?.platform;
      const id = `${image}|${platform ?? ""}`;
      const had = byImage.get(id);
      if (had === undefined) {
        byImage.set(id, {
          image,
          required: p.spec?.required === true,
          ...(platform === undefined ? {} : { platform }),
          prepulls: [key],
          ...(secrets.length === 0 ? {} : { pullSecrets: secrets }),
        });
        continue;
      }
      had.required ||= p.spec?.required === true;
      had.prepulls = [...new Set([...had.prepulls, key])].sort();
      if (secrets.length > 0)
        had.pullSecrets = [...new Set([...(had.pullSecrets ?? []), ...secrets])].sort();
    }
  }
  return {
    images: [...byImage.values()].sort((a, b) => a.image.localeCompare(b.image)),
    nodeLabels: labelsHash(labels),
  };
}

export interface PrePullAggregate {
  /** "N/M": nodes holding every image of the PrePull, of the selected nodes that reported */
  ready: string;
  /** nodes selected by the PrePull */
  selected: number;
  /** the first failures (node: image: reason), at most MAX_FAILED */
  failed: string[];
  failedNodes: number;
}

export const MAX_FAILED = 10;

/**
 * The PrePull's aggregate from the reports of the nodes it selects: a node's NodeImages status,
 * or (an agent of the previous version) its entry in the PrePull's status.nodes.
 */
export function aggregate(
  prepull: PrePull,
  selected: readonly string[],
  report: (node: string) => NodeStatus | undefined,
): PrePullAggregate {
  const images = prepull.spec?.images ?? [];
  let reporting = 0;
  let ready = 0;
  let failedNodes = 0;
  const failed: string[] = [];
  for (const node of [...selected].sort()) {
    const status = report(node) ?? prepull.status?.nodes?.[node];
    if (status === undefined) continue;
    reporting++;
    const states = new Map(status.images.map((i) => [i.image, i]));
    if (images.length > 0 && images.every((i) => states.get(i)?.state === "present")) ready++;
    const failures = images.map((i) => states.get(i)).filter((i) => i?.state === "failed");
    if (failures.length === 0) continue;
    failedNodes++;
    for (const f of failures)
      if (f !== undefined && failed.length < MAX_FAILED)
        failed.push(`${node}: ${f.image}: ${f.reason ?? "failed"}`);
  }
  return { ready: `${ready}/${reporting}`, selected: selected.length, failed, failedNodes };
}
