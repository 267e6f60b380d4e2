import { rm, statfs } from "node:fs/promises";
import { readIndexEntries, refNameOf, withIndexLock, writeIndexEntries } from "./index-file.ts";
import { type Inventory, readInventory } from "./inventory.ts";
import { readLeases } from "./lease.ts";
import { forEachLimited } from "./parallel.ts";
import {
  decidePolicy,
  type FilesystemUsage,
  type PolicyDecision,
  type RetentionPolicy,
} from "./policy.ts";
import { type PrunePlan, type PruneRule, planPrune, type RemovedImage } from "./prune-plan.ts";
import type { Store } from "./store.ts";
import { findStaleFiles, removeStaleFiles } from "./sweep.ts";
import { removeOrphanUses, removeUse } from "./use.ts";

export interface PruneOptions {
  /** Images to remove besides dangling content; none by default. */
  readonly rule?: PruneRule;
  /** Decide by the retention policy on the store's filesystem instead of `rule`. */
  readonly policy?: RetentionPolicy;
  /** Report what would go; remove nothing. */
  readonly dryRun?: boolean;
  readonly now?: number;
}

export interface PruneReport {
  readonly dryRun: boolean;
  readonly images: readonly RemovedImage[];
  readonly blobs: { readonly count: number; readonly bytes: number };
  /** Dead processes' temp files, ingest partials no live process holds, dead locks. */
  readonly staleFiles: { readonly count: number; readonly bytes: number };
  readonly reclaimedBytes: number;
  readonly storeBytesBefore: number;
  readonly storeBytesAfter: number;
  readonly policy?: PolicyDecision & { readonly filesystem: FilesystemUsage };
}

/**
 * Garbage collection. Holds the index lock from reading index.json and the leases to
 * the last blob unlink, so no pull can start relying on a blob it deletes (see lease.ts).
 * kill -9 safe: index.json is replaced atomically before any blob it named is deleted,
 * so at every moment each entry's blobs are present; an interrupted sweep leaves only
 * dangling blobs, which the next prune removes.
 */
export async function prune(store: Store, options: PruneOptions = {}): Promise<PruneReport> {
  const now = options.now ?? Date.now();
  const dryRun = options.dryRun === true;
  // Working files first, under their own ingest locks (pulls are not held up): on a full
  // disk they are often what fills it, and the index rewrite below needs some room.
  const leased = new Set((await readLeases(store.root, false)).flatMap((l) => l.digests));
  const stale = await findStaleFiles(store.root, { leased });
  const staleBytes = dryRun
    ? stale.reduce((sum, f) => sum + f.bytes, 0)
    : await removeStaleFiles(stale);
  const sweep = async () => {
    const inventory = await readInventory(store, { cleanLeases: !dryRun });
    const decided = await decide(store, inventory, options, now);
    if (!dryRun) await apply(store, inventory, decided.plan);
    return decided;
  };
  const { plan, policy } = dryRun ? await sweep() : await withIndexLock(store.root, sweep);
  return {
    dryRun,
    images: plan.images,
    blobs: { count: plan.blobs.length, bytes: plan.bytes },
    staleFiles: { count: stale.length, bytes: staleBytes },
    reclaimedBytes: plan.bytes + staleBytes,
    storeBytesBefore: plan.storeBytes,
    storeBytesAfter: plan.storeBytes - plan.bytes,
    ...(policy === undefined ? {} : { policy }),
  };
}

async function decide(
  store: Store,
  inventory: Inventory,
  options: PruneOptions,
  now: number,
): Promise<{ plan: PrunePlan; policy?: PruneReport["policy"] }> {
  if (options.policy === undefined) return { plan: planPrune(inventory.graph, options.rule) };
  const filesystem = await measureFilesystem(store.root);
  const decision = decidePolicy(filesystem, options.policy, now);
  return { plan: planPrune(inventory.graph, decision.rule), policy: { ...decision, filesystem } };
}

export async function measureFilesystem(path: string): Promise<FilesystemUsage> {
  const s = await statfs(path);
  return { capacity: s.blocks * s.bsize, available: s.bavail * s.bsize };
}

/** Runs under the index lock, in the order that keeps the store valid if killed at any point. */
async function apply(store: Store, inventory: Inventory, plan: PrunePlan): Promise<void> {
  const removed = new Set(plan.images.map((i) => i.reference));
  const named = new Set(inventory.images.flatMap((i) => i.digests));
  const remove = (digests: readonly string[]) =>
    forEachLimited(digests, 16, (digest) => rm(store.blobPath(digest), { force: true }));
  // Blobs no entry names and the removed names' use records (an image without one counts as
  // used when pulled) go before index.json is rewritten: on a full disk, that makes room for it.
  await remove(plan.blobs.filter((d) => !named.has(d)));
  for (const reference of removed) await removeUse(store.root, reference);
  if (removed.size > 0) {
    const entries = await readIndexEntries(store.root);
    const kept = entries.filter((e) => {
      const name = refNameOf(e);
      return name === undefined || !removed.has(name);
    });
    await writeIndexEntries(store.root, kept);
  }
  await remove(plan.blobs.filter((d) => named.has(d)));
  const remaining = inventory.images.map((i) => i.reference).filter((r) => !removed.has(r));
  await removeOrphanUses(store.root, remaining);
}
