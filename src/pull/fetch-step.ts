import { FerryError, isFerryError } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import {
  type Deadline,
  isTransientError,
  type RegistryClient,
  type Repository,
} from "../registry/index.ts";
import type { BlobSourceLocation, SourcePicker } from "./blob-locator.ts";
import { isIntegrityError } from "./transfer.ts";

/** Where one attempt read from: a peer (blob source), a mirror of the upstream, or the upstream. */
export interface Attempt {
  readonly peer: BlobSourceLocation | undefined;
  /** The mirror's base URL when the upstream location is a mirror. */
  readonly mirror: string | undefined;
}

/** What one attempt came to. */
export type AttemptResult =
  | { readonly kind: "complete"; readonly fetched: number }
  /** 401: the source refused the credential. */
  | { readonly kind: "unauthorized" }
  /** `wroteBytes`: the partial changed during the attempt (it now holds bytes of that source). */
  | { readonly kind: "failed"; readonly error: unknown; readonly wroteBytes: boolean };

/** Where a blob download goes after an attempt. */
export type FetchStep =
  /** The partial holds the verified blob: commit it. */
  | { readonly to: "done"; readonly fetched: number }
  /** Wrong bytes were dropped: the next attempt starts from zero, at once. */
  | { readonly to: "restart" }
  /** A peer or a mirror failed: the next attempt resumes from another source, at once. */
  | { readonly to: "next-source" }
  /** The upstream's token expired: renewed; the next attempt resumes at once. */
  | { readonly to: "renew-auth" }
  /** A transient failure: the next attempt resumes after `delay`. */
  | { readonly to: "retry"; readonly delay: number; readonly reason: string }
  | { readonly to: "failed"; readonly error: unknown };

/** What the transitions act on: the blob's source picker and deadline, and the registry's bookkeeping. */
export interface FetchState {
  readonly repo: Repository;
  readonly desc: Descriptor;
  readonly sources: SourcePicker;
  /** One for the blob: every attempt, wait and resumed request counts against it. */
  readonly deadline: Deadline;
  readonly registry: Pick<RegistryClient, "mirrorFailed" | "invalidateAuth">;
  readonly signal: AbortSignal | undefined;
}

/**
 * The download's transition after an attempt: blames or records the source it read from,
 * and says what comes next. Every attempt counts against the blob's deadline; only a
 * transient failure waits before the next one.
 */
export function nextStep(state: FetchState, attempt: Attempt, result: AttemptResult): FetchStep {
  const { peer } = attempt;
  const { sources, deadline } = state;
  switch (result.kind) {
    case "complete":
      sources.completed(peer, result.fetched);
      return { to: "done", fetched: result.fetched };
    case "unauthorized":
      if (peer !== undefined) {
        sources.peerFailed(peer, new Error(`peer ${peer.peer} refused the request (401)`));
        return { to: "next-source" };
      }
      if (!deadline.allows(0)) return { to: "failed", error: authRequired(state) };
      state.registry.invalidateAuth(state.repo);
      return { to: "renew-auth" };
    case "failed":
      return afterFailure(state, attempt, result.error, result.wroteBytes);
  }
}

function afterFailure(
  state: FetchState,
  attempt: Attempt,
  err: unknown,
  wroteBytes: boolean,
): FetchStep {
  const { peer } = attempt;
  const { sources, deadline } = state;
  const aborted = state.signal?.aborted === true;
  if (isIntegrityError(err) && !aborted && sources.verificationFailed(peer, err)) {
    // Wrong bytes (this source's, or a peer's prefix it resumed over): start over from zero.
    deadline.restart();
    return { to: "restart" };
  }
  if (peer !== undefined && !aborted) {
    // A peer that fails is skipped; the next attempt resumes from another peer or the upstream.
    sources.peerFailed(peer, err, wroteBytes);
    return { to: "next-source" };
  }
  if (attempt.mirror !== undefined && !isFerryError(err, "FERRY_INTERRUPTED")) {
    // A mirror that fails is dropped; the next attempt resumes from the registry itself.
    state.registry.mirrorFailed(state.repo.domain, attempt.mirror, messageOf(err));
    return { to: "next-source" };
  }
  if (!isTransientError(err)) return { to: "failed", error: err };
  sources.upstreamFailed();
  const delay = deadline.nextDelay();
  if (!deadline.allows(delay)) return { to: "failed", error: gaveUp(state, err) };
  // The partial keeps what arrived; the next attempt resumes from it with a Range request.
  return { to: "retry", delay, reason: isFerryError(err) ? err.message : String(err) };
}

/** The blob's deadline is spent: `last` with how long and how many attempts it took. */
export function gaveUp(state: FetchState, last: unknown): unknown {
  const { repo, desc } = state;
  return state.deadline.gaveUp(last, `blob ${desc.digest} of ${repo.domain}/${repo.path}`);
}

function authRequired({ repo, desc }: FetchState): FerryError {
  return new FerryError(
    "FERRY_AUTH_REQUIRED",
    `registry ${repo.domain} refused access to blob ${desc.digest} of ${repo.path}`,
    { hint: `log in with \`ferry login ${repo.domain}\`` },
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
