import { FerryError } from "../observe/index.ts";
import type { PruneRule } from "./prune-plan.ts";

// The store's retention policy, decided like the kubelet's image garbage collector:
// when the filesystem holding the store is used at or above `highPercent`, evict least
// recently used unpinned images until usage would drop to `lowPercent`; independently,
// remove unpinned images not used for `maxAgeMs`. Pure: the caller measures the disk.

export interface RetentionPolicy {
  readonly highPercent: number;
  readonly lowPercent: number;
  /** Remove unpinned images not used for this long, whatever the disk usage. */
  readonly maxAgeMs?: number | undefined;
}

export const DEFAULT_RETENTION: RetentionPolicy = { highPercent: 85, lowPercent: 80 };

/** The filesystem holding the store, in bytes (statfs: blocks × bsize, bavail × bsize). */
export interface FilesystemUsage {
  readonly capacity: number;
  readonly available: number;
}

export interface PolicyDecision {
  readonly rule: PruneRule;
  /** 100 − available/capacity, rounded down as the kubelet does. */
  readonly usagePercent: number;
  readonly overHigh: boolean;
  /** Bytes to free to reach the low watermark; 0 below the high one. */
  readonly bytesToFree: number;
}

export function validatePolicy(policy: RetentionPolicy): void {
  const { highPercent: high, lowPercent: low } = policy;
  const whole = (n: number) => Number.isInteger(n) && n >= 0 && n <= 100;
  if (!whole(high) || !whole(low) || low >= high) {
    throw new FerryError(
      "FERRY_INVALID_ARGUMENT",
      `the low watermark (${low}%) must be below the high one (${high}%), both whole percentages 0–100`,
      { hint: "e.g. --high 85 --low 80" },
    );
  }
  if (policy.maxAgeMs !== undefined && !(policy.maxAgeMs > 0)) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", "the maximum age must be longer than zero", {
      hint: "e.g. --max-age 14d",
    });
  }
}

export function decidePolicy(
  fs: FilesystemUsage,
  policy: RetentionPolicy,
  now: number,
): PolicyDecision {
  validatePolicy(policy);
  const usagePercent = fs.capacity > 0 ? 100 - Math.floor((fs.available * 100) / fs.capacity) : 0;
  const overHigh = fs.capacity > 0 && usagePercent >= policy.highPercent;
  const bytesToFree = overHigh
    ? Math.max(0, Math.ceil((fs.capacity * (100 - policy.lowPercent)) / 100 - fs.available))
    : 0;
  const rule: PruneRule = {
    ...(policy.maxAgeMs === undefined ? {} : { expire: { usedBefore: now - policy.maxAgeMs } }),
    ...(bytesToFree > 0 ? { evict: { freeBytes: bytesToFree } } : {}),
  };
  return { rule, usagePercent, overHigh, bytesToFree };
}
