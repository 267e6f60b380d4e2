// The Events a node's report raises, whichever object carries it (a PrePull's status entry or
// the node's own NodeImages): a pull that newly failed, and every image present at last.
import type { EventRecorder, InvolvedObject } from "./events.ts";

/** What both report shapes have in common. */
export interface ReportCounts {
  readonly total: number;
  readonly present: number;
  readonly images: readonly {
    readonly image: string;
    readonly state: string;
    readonly reason?: string | undefined;
  }[];
}

/** Records PullFailed for each image that failed anew (or for another reason), ImagesPresent once all are. */
export function announceReport(
  events: EventRecorder,
  nodeName: string,
  involved: InvolvedObject,
  before: ReportCounts | undefined,
  now: ReportCounts,
): void {
  for (const image of now.images) {
    const was = before?.images.find((i) => i.image === image.image);
    if (image.state === "failed" && (was?.state !== "failed" || was.reason !== image.reason))
      events.record({
        involved,
        reason: "PullFailed",
        message: `${nodeName}: ${image.image}: ${image.reason ?? ""}`,
        warning: true,
      });
  }
  if (now.total > 0 && now.present === now.total && !(before && before.present === before.total))
    events.record({
      involved,
      reason: "ImagesPresent",
      message: `${nodeName}: all ${now.total} images present`,
    });
}
