import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FerryError, isFerryError } from "../observe/index.ts";
import { Deadline, RegistryClient, type Repository } from "../registry/index.ts";
import { SourcePicker } from "./blob-locator.ts";
import { type Attempt, type FetchState, nextStep } from "./fetch-step.ts";

// The blob download's transitions, one attempt's result at a time, on a real RegistryClient,
// SourcePicker and Deadline (its clock is the test's).

const repo: Repository = { domain: "127.0.0.1:5000", path: "team/app" };
const desc = {
  mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
  digest: `sha256:${"a".repeat(64)}`,
  size: 1000,
};
const upstream: Attempt = { peer: undefined, mirror: undefined };
const viaMirror: Attempt = { peer: undefined, mirror: "http://127.0.0.1:5001" };

function fetchState(options: { maxAttempts?: number; signal?: AbortSignal } = {}) {
  const clock = { now: 0 };
  const registry = new RegistryClient();
  const deadline = new Deadline(
    {
      maxAttempts: options.maxAttempts ?? 5,
      baseDelayMs: 200,
      maxDelayMs: 10_000,
      maxElapsedMs: 60_000,
    },
    () => clock.now,
  );
  const sources = new SourcePicker(undefined, registry, repo, desc, options.signal);
  const state: FetchState = { repo, desc, sources, deadline, registry, signal: options.signal };
  return { state, deadline, sources, clock };
}

const unavailable = () =>
  new FerryError("FERRY_REGISTRY_UNAVAILABLE", "registry 127.0.0.1:5000 answered 503");
const corrupt = (resumedFrom: number) =>
  new FerryError("FERRY_DIGEST_MISMATCH", "content does not match its digest", {
    fields: { resumedFrom },
  });
const failed = (error: unknown) => ({ kind: "failed", error, wroteBytes: true }) as const;

describe("nextStep (a blob download's transitions)", () => {
  it("complete → done, the bytes counted as the upstream's", () => {
    const { state, sources } = fetchState();
    assert.deepEqual(nextStep(state, upstream, { kind: "complete", fetched: 1000 }), {
      to: "done",
      fetched: 1000,
    });
    assert.equal(sources.fromUpstream, 1000);
    assert.equal(sources.fromPeers, 0);
  });

  it("a transient failure → retry after the backoff delay, with the failure as the reason", () => {
    const { state, deadline } = fetchState();
    deadline.attempt();
    const step = nextStep(state, upstream, failed(unavailable()));
    assert.equal(step.to, "retry");
    assert.ok(step.to === "retry" && step.delay >= 0 && step.delay <= 200);
    assert.ok(step.to === "retry" && step.reason === "registry 127.0.0.1:5000 answered 503");
  });

  it("transient failures until the attempts are spent → failed, saying how many were made", () => {
    const { state, deadline } = fetchState({ maxAttempts: 3 });
    const steps = [1, 2, 3].map(() => {
      deadline.attempt();
      return nextStep(state, upstream, failed(unavailable()));
    });
    assert.deepEqual(
      steps.map((s) => s.to),
      ["retry", "retry", "failed"],
    );
    const last = steps[2];
    assert.ok(last?.to === "failed");
    assert.ok(isFerryError(last.error, "FERRY_REGISTRY_UNAVAILABLE"));
    assert.match(last.error.message, /gave up after 3 attempts/);
    assert.equal(last.error.fields.attempts, 3);
  });

  it("the deadline passing without progress → failed, even before the attempts are spent", () => {
    const { state, deadline, clock } = fetchState();
    deadline.attempt();
    clock.now = 61_000;
    const step = nextStep(state, upstream, failed(unavailable()));
    assert.equal(step.to, "failed");
  });

  it("a failure that is not transient → failed with that error, no retry", () => {
    const { state } = fetchState();
    const error = new FerryError("FERRY_BLOB_UNKNOWN", "blob unknown to registry");
    assert.deepEqual(nextStep(state, upstream, failed(error)), { to: "failed", error });
  });

  it("wrong bytes from the upstream, read from zero → failed: its own bytes are wrong", () => {
    const { state } = fetchState();
    const error = corrupt(0);
    assert.deepEqual(nextStep(state, upstream, failed(error)), { to: "failed", error });
  });

  it("wrong bytes after resuming a partial of unknown origin → restart from zero once, then failed", () => {
    const { state } = fetchState();
    assert.deepEqual(nextStep(state, upstream, failed(corrupt(500))), { to: "restart" });
    assert.equal(nextStep(state, upstream, failed(corrupt(500))).to, "failed");
  });

  it("wrong bytes while the pull is being cancelled → no restart", () => {
    const abort = new AbortController();
    const { state } = fetchState({ signal: abort.signal });
    abort.abort();
    assert.equal(nextStep(state, upstream, failed(corrupt(500))).to, "failed");
  });

  it("a mirror that fails, for any reason but cancellation → next source (the registry itself), at once", () => {
    const { state } = fetchState();
    const notFound = new FerryError("FERRY_BLOB_UNKNOWN", "blob unknown to the mirror");
    assert.deepEqual(nextStep(state, viaMirror, failed(notFound)), { to: "next-source" });
    const interrupted = new FerryError("FERRY_INTERRUPTED", "cancelled");
    assert.equal(nextStep(state, viaMirror, failed(interrupted)).to, "failed");
  });

  it("401 from the upstream → renew auth while the deadline allows, then FERRY_AUTH_REQUIRED", () => {
    const { state, deadline } = fetchState({ maxAttempts: 2 });
    deadline.attempt();
    assert.deepEqual(nextStep(state, upstream, { kind: "unauthorized" }), { to: "renew-auth" });
    deadline.attempt();
    const step = nextStep(state, upstream, { kind: "unauthorized" });
    assert.ok(step.to === "failed");
    assert.ok(isFerryError(step.error, "FERRY_AUTH_REQUIRED"));
    assert.match(step.error.hint ?? "", /ferry login 127\.0\.0\.1:5000/);
  });
});
