/**
 * Writes this node's entry of a PrePull's status: one JSON merge patch on the status
 * subresource with status.nodes[node] (other nodes' keys untouched) and status.ready, carrying
 * the resourceVersion it was computed from; a 409 means another node wrote first, so it reads
 * the PrePull again and recomputes `ready`.
 */
import { type CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { apiStatus } from "./api-errors.ts";
import { PREPULL_GROUP, PREPULL_PLURAL, PREPULL_VERSION } from "./names.ts";
import { type NodeStatus, type PrePull, readyCount } from "./prepull.ts";

const MAX_ATTEMPTS = 8;

/** `mine` undefined removes the node's entry (it no longer matches). */
export async function writeNodeStatus(
  custom: CustomObjectsApi,
  prepull: PrePull,
  node: string,
  mine: NodeStatus | undefined,
): Promise<void> {
  const name = prepull.metadata?.name ?? "";
  const namespace = prepull.metadata?.namespace ?? "";
  const where = {
    group: PREPULL_GROUP,
    version: PREPULL_VERSION,
    namespace,
    plural: PREPULL_PLURAL,
    name,
  };
  const options = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  let current = prepull;
  for (let attempt = 1; ; attempt++) {
    const body = {
      metadata: { resourceVersion: current.metadata?.resourceVersion },
      status: {
        nodes: { [node]: mine ?? null },
        ready: readyCount(current.status?.nodes, node, mine),
      },
    };
    try {
      await custom.patchNamespacedCustomObjectStatus({ ...where, body }, options);
      return;
    } catch (error) {
      if (apiStatus(error) !== 409 || attempt >= MAX_ATTEMPTS) throw error;
      current = (await custom.getNamespacedCustomObject(where)) as PrePull;
    }
  }
}
