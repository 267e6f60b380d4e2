/**
 * The image filesystem's headroom against kubelet's image GC: above
 * imageGCHighThresholdPercent kubelet deletes unused images, so a warm that would push usage
 * past it is refused (evicting images to make room for pre-pulled ones is worse than no warm).
 */
import { statfs } from "node:fs/promises";
import { FerryError } from "../observe/index.ts";

export interface FilesystemUsage {
  readonly totalBytes: number;
  /** capacity − available, as kubelet counts it */
  readonly usedBytes: number;
}

export interface HeadroomDecision {
  readonly ok: boolean;
  readonly usedPercent: number;
  /** usage after the warm, when its size is known */
  readonly afterPercent: number;
  readonly thresholdPercent: number;
}

/** Pure: does `incomingBytes` more keep usage at or below the threshold? */
export function decideHeadroom(
  usage: FilesystemUsage,
  incomingBytes: number,
  thresholdPercent: number,
): HeadroomDecision {
  const pct = (bytes: number) => (usage.totalBytes === 0 ? 100 : (bytes / usage.totalBytes) * 100);
  const usedPercent = pct(usage.usedBytes);
  const afterPercent = pct(usage.usedBytes + incomingBytes);
  return { ok: afterPercent <= thresholdPercent, usedPercent, afterPercent, thresholdPercent };
}

export async function filesystemUsage(path: string): Promise<FilesystemUsage> {
  const s = await statfs(path);
  return { totalBytes: s.blocks * s.bsize, usedBytes: (s.blocks - s.bavail) * s.bsize };
}

export function headroomError(image: string, path: string, d: HeadroomDecision): FerryError {
  return new FerryError(
    "FERRY_DISK_FULL",
    `not warming ${image}: the image filesystem (${path}) would be ${d.afterPercent.toFixed(1)}% full, above kubelet's image GC threshold of ${d.thresholdPercent}%`,
    {
      hint: "free space on the node's image filesystem, or raise imageGCHighThresholdPercent (and the agent's kubernetes.imageGCHighThresholdPercent) together",
      fields: {
        image,
        path,
        usedPercent: d.usedPercent,
        afterPercent: d.afterPercent,
        thresholdPercent: d.thresholdPercent,
      },
    },
  );
}
