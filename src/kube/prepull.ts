/**
 * The PrePull resource (ferry.dev/v1alpha1) as the node agent reads and reports it, and the
 * pure parts: which PrePulls apply to a node, its per-node status, and the `ready` count.
 */

export type ImageState = "present" | "pulling" | "failed" | "missing";

export interface NodeImageStatus {
  image: string;
  state: ImageState;
  reason?: string;
  digest?: string;
}

export interface NodeStatus {
  images: NodeImageStatus[];
  present: number;
  total: number;
  updated: string;
}

export interface PrePull {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
  };
  spec?: {
    images?: string[];
    required?: boolean;
    nodeSelector?: Record<string, string>;
    imagePullSecrets?: { name?: string }[];
    platform?: string;
  };
  status?: {
    nodes?: Record<string, NodeStatus>;
    ready?: string;
  };
}

export function prepullKey(p: PrePull): string {
  return `${p.metadata?.namespace ?? ""}/${p.metadata?.name ?? ""}`;
}

/** This node's entry, from what the runtime holds and what the pulls said. */
export function nodeStatus(images: readonly NodeImageStatus[], now: Date): NodeStatus {
  return {
    images: [...images],
    present: images.filter((i) => i.state === "present").length,
    total: images.length,
    updated: now.toISOString().replace(/\.\d+Z$/, "Z"),
  };
}

/** Equal apart from `updated`: no write needed. */
export function sameNodeStatus(a: NodeStatus | undefined, b: NodeStatus): boolean {
  if (a === undefined) return false;
  return JSON.stringify({ ...a, updated: "" }) === JSON.stringify({ ...b, updated: "" });
}

/** "N/M": N nodes holding every image, of M nodes reporting, with `mine` in place of this node's entry. */
export function readyCount(
  nodes: Readonly<Record<string, NodeStatus>> | undefined,
  node: string,
  mine: NodeStatus | undefined,
): string {
  const all: Record<string, NodeStatus> = { ...(nodes ?? {}) };
  if (mine === undefined) delete all[node];
  else all[node] = mine;
  const entries = Object.values(all);
  const ready = entries.filter((s) => s.total > 0 && s.present === s.total).length;
  return `${ready}/${entries.length}`;
}
