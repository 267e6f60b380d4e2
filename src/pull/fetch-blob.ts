import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { FerryError, isFerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import { isTransientError, type RegistryClient, type Repository } from "../registry/index.ts";
import type { Store } from "../store/index.ts";
import { type BlobSource, SourcePicker } from "./blob-source.ts";
import type { SinkPool } from "./sink-pool.ts";
import {
  isIntegrityError,
  type TransferJob,
  type TransferResult,
  transferBlob,
} from "./transfer.ts";

export type TransferUpdate =
  | { status: "downloading"; current: number }
  | { status: "retrying"; attempt: number; reason: string };

export interface BlobOutcome {
  downloaded: boolean;
  fetched: number;
  /** Of `fetched`, the bytes a blob source (peer) delivered. */
  fromPeers?: number;
}

/** What a blob download needs from the Puller that runs it. */
export interface DownloadContext {
  readonly registry: RegistryClient;
  readonly store: Store;
  readonly pool: SinkPool;
  /** Blobs smaller than this are hashed on this thread. */
  readonly inlineBelow: number;
  readonly blobSource: BlobSource | undefined;
  /** Listeners for the bytes an ingest file holds, per digest (the mirror streams from it). */
  readonly watchers: ReadonlyMap<string, ReadonlySet<(current: number) => void>>;
}

export async function downloadBlob(
  ctx: DownloadContext,
  repo: Repository,
  desc: Descriptor,
  emit: (e: TransferUpdate) => void,
  signal: AbortSignal | undefined,
): Promise<BlobOutcome> {
  const pool = ctx.pool;
  const writer = await ctx.store.ingest(desc, {
    signal,
    ...(desc.size < ctx.inlineBelow ? {} : { sink: () => pool.createSink() }),
  });
  if (writer === undefined) return { downloaded: false, fetched: 0 };
  const sources = new SourcePicker(ctx.blobSource, ctx.registry, repo, desc, signal);
  let ok = false;
  try {
    let fetched = 0;
    // One deadline for the blob: every attempt, wait and resumed request counts against it.
    const deadline = ctx.registry.deadline(repo.domain);
    const gaveUp = (err: unknown) =>
      deadline.gaveUp(err, `blob ${desc.digest} of ${repo.domain}/${repo.path}`);
    for (;;) {
      // Auth for the upstream (ping, token) counts against the blob's deadline as well.
      const { location, peer } = await sources.next(deadline).catch((err: unknown) => {
        throw isTransientError(err) ? gaveUp(err) : err;
      });
      if (peer === undefined) deadline.attempt();
      const job: TransferJob = {
        idleTimeoutMs: peer === undefined ? deadline.idleTimeoutMs() : peer.idleTimeoutMs,
        url: location.url,
        headers: location.headers,
        tls: location.tls,
        guard: location.guard,
        host: repo.domain,
        repository: repo.path,
      };
      const onProgress = (current: number) => {
        deadline.progress(current);
        emit({ status: "downloading", current });
        for (const watch of ctx.watchers.get(desc.digest) ?? []) watch(current);
      };
      let result: TransferResult | undefined;
      let failure: unknown;
      const held = peer === undefined ? "" : await fileState(writer.path);
      try {
        result = await transferBlob(job, writer, onProgress, { signal });
      } catch (err) {
        if (isIntegrityError(err) && !signal?.aborted && sources.verificationFailed(peer, err)) {
          // Wrong bytes (this source's, or a peer's prefix it resumed over): start over from zero.
          deadline.restart();
          continue;
        }
        if (peer !== undefined && !signal?.aborted) {
          // A peer that fails is skipped; the next attempt resumes from another peer or the upstream.
          sources.peerFailed(peer, err, (await fileState(writer.path)) !== held);
          continue;
        }
        if (location.mirror !== undefined && !isFerryError(err, "FERRY_INTERRUPTED")) {
          // A mirror that fails is dropped; the next attempt resumes from the registry itself.
          ctx.registry.mirrorFailed(
            repo.domain,
            location.mirror,
            err instanceof Error ? err.message : String(err),
          );
          continue;
        }
        if (!isTransientError(err)) throw err;
        sources.upstreamFailed();
        failure = err;
      }
      if (result?.kind === "complete") {
        fetched += result.fetched;
        sources.completed(peer, result.fetched);
        break;
      }
      if (result?.kind === "unauthorized" && peer !== undefined) {
        sources.peerFailed(peer, new Error(`peer ${peer.peer} refused the request (401)`));
        continue;
      }
      const delay = deadline.nextDelay();
      if (result?.kind === "unauthorized") {
        if (!deadline.allows(0)) {
          throw new FerryError(
            "FERRY_AUTH_REQUIRED",
            `registry ${repo.domain} refused access to blob ${desc.digest} of ${repo.path}`,
            {
              hint: `log in with \`ferry login ${repo.domain}\``,
            },
          );
        }
        ctx.registry.invalidateAuth(repo);
        continue;
      }
      if (!deadline.allows(delay)) throw gaveUp(failure);
      // The ingest file keeps what arrived; the next attempt resumes from it with a Range request.
      emit({
        status: "retrying",
        attempt: deadline.attempts,
        reason: isFerryError(failure) ? failure.message : String(failure),
      });
      await sleep(delay, undefined, { signal });
    }
    await writer.commit();
    ok = true;
    return { downloaded: true, fetched, fromPeers: sources.fromPeers };
  } finally {
    sources.settle(ok);
    // A partial on a full disk is dropped here: resuming it needs the space it lacks.
    await writer.close();
  }
}

/** The ingest file's identity and length ("" when absent): a change means an attempt wrote to it. */
function fileState(path: string): Promise<string> {
  return stat(path).then(
    (s) => `${s.ino}:${s.size}`,
    () => "",
  );
}
