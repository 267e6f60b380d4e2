// The rest of a lazy layer, fetched behind the reads at a low rate, so a long-running
// container ends with a complete local copy in the chunk cache. Chunks already cached are
// skipped; a failed run is left for the reads that need it.
import { setTimeout as sleep } from "node:timers/promises";
import type { ChunkStore } from "./chunks.ts";
import type { MountLayer } from "./image.ts";
import { prefetchRuns } from "./mount.ts";

export interface BackgroundResult {
  /** Compressed bytes fetched in the background. */
  readonly bytes: number;
  /** Ranges that failed (their chunks are fetched when read). */
  readonly failed: number;
  readonly ms: number;
}

/** Fetches every chunk of `layer` (layer 0 of `chunks`) at no more than `bytesPerSecond`. */
export async function fetchInBackground(
  layer: MountLayer,
  chunks: ChunkStore,
  bytesPerSecond: number,
  signal: AbortSignal,
): Promise<BackgroundResult> {
  const started = performance.now();
  const files = layer.entries
    .filter((entry) => entry.type === "reg" && entry.chunks.length > 0)
    .map((entry) => ({ layer: 0, entry }));
  const before = chunks.fetchedBytes;
  let failed = 0;
  for (const run of prefetchRuns(files)) {
    if (signal.aborted) break;
    const from = chunks.fetchedBytes;
    try {
      await chunks.writeRoom();
      if (run.stream)
        for (const { chunk, path } of run.items) await chunks.prefetchOne(0, chunk, path);
      else await chunks.prefetchRun(0, run.items);
    } catch {
      failed++;
    }
    // Paced by what crossed the network: a run served from the cache costs no wait.
    const waitMs = ((chunks.fetchedBytes - from) / bytesPerSecond) * 1000;
    if (waitMs > 0) await sleep(waitMs, undefined, { signal }).catch(() => undefined);
  }
  return {
    bytes: chunks.fetchedBytes - before,
    failed,
    ms: Math.round(performance.now() - started),
  };
}
