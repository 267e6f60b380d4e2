/**
 * This node's entries in the PrePulls' statuses: written when they change (not for `updated`
 * alone), removed from PrePulls that no longer match the node, with an Event on the PrePull
 * when an image fails or all become present.
 */
import type { CustomObjectsApi } from "@kubernetes/client-node";
import { apiMessage } from "./api-errors.ts";
import type { EventRecorder, InvolvedObject } from "./events.ts";
import { PREPULL_GROUP, PREPULL_KIND, PREPULL_VERSION } from "./names.ts";
import {
  type NodeImageStatus,
  type NodeStatus,
  nodeStatus,
  type PrePull,
  prepullKey,
  sameNodeStatus,
} from "./prepull.ts";
import { writeNodeStatus } from "./prepull-status.ts";
import { announceReport } from "./report-events.ts";

export interface PrePullReportOptions {
  readonly custom: CustomObjectsApi;
  readonly nodeName: string;
  readonly events: EventRecorder;
  readonly log: (entry: Record<string, unknown>) => void;
}

export class PrePullReport {
  readonly #o: PrePullReportOptions;

  constructor(options: PrePullReportOptions) {
    this.#o = options;
  }

  /** `matching`: keys of the PrePulls selecting this node; `live`: its state of an image. */
  async write(
    prepulls: readonly PrePull[],
    matching: ReadonlySet<string>,
    live: (image: string) => NodeImageStatus,
  ): Promise<void> {
    const me = this.#o.nodeName;
    for (const p of prepulls) {
      const key = prepullKey(p);
      const mine = matching.has(key)
        ? nodeStatus((p.spec?.images ?? []).map(live), new Date())
        : undefined;
      const current = p.status?.nodes?.[me];
      if (mine === undefined ? current === undefined : sameNodeStatus(current, mine)) continue;
      await writeNodeStatus(this.#o.custom, p, me, mine).catch((error: unknown) =>
        this.#o.log({
          level: "warn",
          msg: "PrePull status not written",
          prepull: key,
          error: apiMessage(error),
        }),
      );
      if (mine !== undefined) this.#announce(p, current, mine);
    }
  }

  #announce(p: PrePull, before: NodeStatus | undefined, now: NodeStatus): void {
    const involved: InvolvedObject = {
      apiVersion: `${PREPULL_GROUP}/${PREPULL_VERSION}`,
      kind: PREPULL_KIND,
      name: p.metadata?.name ?? "",
      namespace: p.metadata?.namespace,
      uid: p.metadata?.uid,
    };
    announceReport(this.#o.events, this.#o.nodeName, involved, before, now);
  }
}
