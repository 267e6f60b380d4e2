import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { Descriptor } from "../oci/index.ts";
import {
  type BlobLocation,
  isTransientError,
  type RegistryClient,
  type Repository,
} from "../registry/index.ts";
import type { IngestWriter, Store } from "../store/index.ts";
import { type BlobLocator, SourcePicker } from "./blob-locator.ts";
import {
  type Attempt,
  type AttemptResult,
  type FetchState,
  gaveUp,
  nextStep,
} from "./fetch-step.ts";
import type { SinkPool } from "./sink-pool.ts";
import { type TransferJob, transferBlob } from "./transfer.ts";

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
  readonly blobLocator: BlobLocator | undefined;
  /** Listeners for the bytes an ingest file holds, per digest (the mirror streams from it). */
  readonly watchers: ReadonlyMap<string, ReadonlySet<(current: number) => void>>;
}

/**
 * Downloads one blob into the store: the store's ingest writer (lock, resumable partial,
 * verified commit), then attempts from the source picker (peers first when sharing, a mirror,
 * the upstream), each result turned into the next step by `nextStep` (fetch-step.ts).
 */
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
  const state = fetchState(ctx.registry, ctx.blobLocator, repo, desc, signal);
  let ok = false;
  try {
    const fetched = await fetchVerified(state, writer, (e) => {
      emit(e);
      if (e.status !== "downloading") return;
      for (const watch of ctx.watchers.get(desc.digest) ?? []) watch(e.current);
    });
    await writer.commit();
    ok = true;
    return { downloaded: true, fetched, fromPeers: state.sources.fromPeers };
  } finally {
    state.sources.settle(ok);
    // A partial on a full disk is dropped here: resuming it needs the space it lacks.
    await writer.close();
  }
}

/** A blob download's state: its source picker (peers first when `blobLocator` is given) and its one deadline. */
export function fetchState(
  registry: RegistryClient,
  blobLocator: BlobLocator | undefined,
  repo: Repository,
  desc: Descriptor,
  signal: AbortSignal | undefined,
): FetchState {
  return {
    repo,
    desc,
    sources: new SourcePicker(blobLocator, registry, repo, desc, signal),
    deadline: registry.deadline(repo.domain),
    registry,
    signal,
  };
}

/**
 * Attempts until `writer` holds the verified blob (not yet committed: a copy uploads it from
 * there): each attempt's result becomes the next step by `nextStep` (fetch-step.ts). Returns
 * the bytes the completing attempt fetched.
 */
export async function fetchVerified(
  state: FetchState,
  writer: IngestWriter,
  emit: (e: TransferUpdate) => void,
): Promise<number> {
  const onProgress = (current: number) => {
    state.deadline.progress(current);
    emit({ status: "downloading", current });
  };
  for (;;) {
    const attempt = await locate(state);
    const result = await runAttempt(state, attempt, writer, onProgress);
    const step = nextStep(state, attempt, result);
    switch (step.to) {
      case "done":
        return step.fetched;
      case "failed":
        throw step.error;
      case "retry":
        emit({ status: "retrying", attempt: state.deadline.attempts, reason: step.reason });
        await sleep(step.delay, undefined, { signal: state.signal });
        break;
      case "restart":
      case "next-source":
      case "renew-auth":
        break;
    }
  }
}

/** Where the next attempt reads from; the upstream's auth (ping, token) counts against the blob's deadline. */
async function locate(state: FetchState): Promise<Attempt & { location: BlobLocation }> {
  const { location, peer } = await state.sources.next(state.deadline).catch((err: unknown) => {
    throw isTransientError(err) ? gaveUp(state, err) : err;
  });
  if (peer === undefined) state.deadline.attempt();
  return { location, peer, mirror: location.mirror };
}

/** One request for the blob's bytes (from the partial's offset on), into the writer. */
async function runAttempt(
  state: FetchState,
  attempt: Attempt & { location: BlobLocation },
  writer: IngestWriter,
  onProgress: (current: number) => void,
): Promise<AttemptResult> {
  const { location, peer } = attempt;
  const job: TransferJob = {
    idleTimeoutMs: peer === undefined ? state.deadline.idleTimeoutMs() : peer.idleTimeoutMs,
    url: location.url,
    headers: location.headers,
    tls: location.tls,
    guard: location.guard,
    host: state.repo.domain,
    repository: state.repo.path,
  };
  const held = peer === undefined ? "" : await fileState(writer.path);
  try {
    const result = await transferBlob(job, writer, onProgress, { signal: state.signal });
    return result.kind === "complete"
      ? { kind: "complete", fetched: result.fetched }
      : { kind: "unauthorized" };
  } catch (error) {
    const wroteBytes = peer !== undefined && (await fileState(writer.path)) !== held;
    return { kind: "failed", error, wroteBytes };
  }
}

/** The ingest file's identity and length ("" when absent): a change means an attempt wrote to it. */
function fileState(path: string): Promise<string> {
  return stat(path).then(
    (s) => `${s.ino}:${s.size}`,
    () => "",
  );
}
