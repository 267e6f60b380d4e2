/**
 * The headroom check before each pull: the image filesystem measured, the image's size
 * estimated, and a pull that would pass kubelet's GC threshold refused, with a condition, a
 * metric and an Event on the node.
 */
import { access } from "node:fs/promises";
import type { Credential } from "../config/index.ts";
import type { Reference } from "../reference/index.ts";
import type { EventRecorder, InvolvedObject } from "./events.ts";
import { decideHeadroom, filesystemUsage, headroomError } from "./headroom.ts";
import type { KubeMetrics } from "./metrics.ts";
import { DEFAULT_IMAGE_GC_HIGH_PERCENT } from "./names.ts";
import type { NodeConditions } from "./node-conditions.ts";

export interface NodeHeadroomOptions {
  readonly nodeName: string;
  /** The image filesystem to check before each pull (containerd's root); no check without it. */
  readonly imageFsPath?: string | undefined;
  /**
   * The runtime's own answer (CRI ImageFsInfo), asked when the path was not set explicitly: its
   * mountpoint is checked instead of imageFsPath when it is visible here.
   */
  readonly runtimeImageFs?: (() => Promise<string | undefined>) | undefined;
  /** kubelet's imageGCHighThresholdPercent (default 85). */
  readonly imageGCHighThresholdPercent?: number | undefined;
  /** Bytes an image will add, when known (e.g. the sum of its layers); 0 otherwise. */
  readonly estimateBytes?:
    | ((ref: Reference, credential: Credential | undefined) => Promise<number | undefined>)
    | undefined;
  readonly conditions: NodeConditions;
  readonly metrics: KubeMetrics;
  readonly events: EventRecorder;
  readonly nodeRef: () => InvolvedObject;
  readonly warnOnce: (key: string, entry: Record<string, unknown> & { msg: string }) => void;
}

/** Throws FERRY_DISK_FULL when pulling `image` would pass the threshold. */
export async function checkHeadroom(
  o: NodeHeadroomOptions,
  image: string,
  ref: Reference,
  credential: Credential | undefined,
): Promise<void> {
  const path = (await runtimePath(o)) ?? o.imageFsPath;
  if (path === undefined) return;
  let usage: Awaited<ReturnType<typeof filesystemUsage>>;
  try {
    usage = await filesystemUsage(path);
  } catch (error) {
    o.warnOnce(`statfs:${path}`, {
      msg: "image filesystem not measured: headroom not checked",
      path,
      error: String(error),
    });
    return;
  }
  const incoming = (await o.estimateBytes?.(ref, credential).catch(() => undefined)) ?? 0;
  const threshold = o.imageGCHighThresholdPercent ?? DEFAULT_IMAGE_GC_HIGH_PERCENT;
  const decision = decideHeadroom(usage, incoming, threshold);
  if (decision.ok) {
    o.conditions.delete("ImageFilesystemHeadroom");
    return;
  }
  const error = headroomError(image, path, decision);
  o.conditions.set("ImageFilesystemHeadroom", {
    type: "ImageFilesystemHeadroom",
    status: "False",
    reason: "HeadroomExceeded",
    message: error.message,
  });
  o.metrics.headroomRefused(o.nodeName);
  o.events.record({
    involved: o.nodeRef(),
    reason: "HeadroomExceeded",
    message: error.message,
    warning: true,
  });
  throw error;
}

/** The runtime's image filesystem when it reports one this process can see, else undefined. */
async function runtimePath(o: NodeHeadroomOptions): Promise<string | undefined> {
  if (o.runtimeImageFs === undefined) return undefined;
  let path: string | undefined;
  try {
    path = await o.runtimeImageFs();
  } catch (error) {
    o.warnOnce("imagefsinfo", {
      msg: "runtime did not say where its image filesystem is (ImageFsInfo): checking the configured path",
      error: String(error),
    });
    return undefined;
  }
  if (path === undefined) return undefined;
  try {
    await access(path);
    return path;
  } catch {
    o.warnOnce(`imagefsinfo:${path}`, {
      msg: "the runtime's image filesystem is not visible to the agent: checking the configured path",
      path,
    });
    return undefined;
  }
}
