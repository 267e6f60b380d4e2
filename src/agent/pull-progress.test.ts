import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ActivityLog } from "./activity.ts";
import { PullProgressTracker } from "./pull-progress.ts";

const blob = (
  digest: string,
  size: number,
  status: "exists" | "waiting" | "downloading" | "complete",
  current?: number,
  resumedFrom?: number,
) =>
  ({
    type: "blob",
    reference: "r/x:1",
    digest,
    kind: "layer",
    size,
    status,
    ...(current === undefined ? {} : { current }),
    ...(resumedFrom === undefined ? {} : { resumedFrom }),
  }) as const;

describe("PullProgressTracker", () => {
  it("counts held blobs as done but not downloaded, and rates what this pull fetched", () => {
    const t = new PullProgressTracker(0);
    t.update(blob("sha256:a", 1000, "exists"));
    t.update(blob("sha256:b", 3000, "waiting"));
    t.update(blob("sha256:c", 6000, "waiting"));
    assert.deepEqual(t.progress(1000), {
      done: 1000,
      total: 10_000,
      downloaded: 0,
      bytesPerSecond: 0,
    });
    t.update(blob("sha256:b", 3000, "downloading", 1000));
    t.update(blob("sha256:c", 6000, "downloading", 3000, 2000));
    assert.deepEqual(t.progress(2000), {
      done: 5000,
      total: 10_000,
      downloaded: 2000,
      bytesPerSecond: 1000,
    });
    t.update(blob("sha256:b", 3000, "complete"));
    t.update(blob("sha256:c", 6000, "complete"));
    assert.deepEqual(t.progress(4000), {
      done: 10_000,
      total: 10_000,
      downloaded: 7000,
      bytesPerSecond: 1750,
    });
  });

  it("ignores events that are not about blobs", () => {
    const t = new PullProgressTracker(0);
    assert.equal(
      t.update({ type: "resolved", reference: "r/x:1", digest: "sha256:i", mediaType: "m" }),
      false,
    );
    assert.deepEqual(t.progress(10), { done: 0, total: 0, downloaded: 0, bytesPerSecond: 0 });
  });
});

describe("ActivityLog", () => {
  it("keeps pulls and failures (not looks), bounded, with duration, bytes and source", () => {
    const log = new ActivityLog(2);
    const at = new Date("2026-11-23T10:00:00Z");
    const base = { target: "store", required: true } as const;
    log.record({ ...base, image: "r.example:5000/a:1", state: "present" }, at);
    log.record({ ...base, image: "r.example:5000/a:1", state: "pulling" }, at);
    log.record(
      { ...base, image: "r.example:5000/a:1", state: "pulled", seconds: 1.5, bytes: 42 },
      at,
    );
    log.record(
      {
        ...base,
        image: "r.example:5000/b:1",
        state: "failed",
        error: { code: "FERRY_MANIFEST_UNKNOWN", message: "no such tag" },
      },
      at,
    );
    assert.deepEqual(log.entries(), [
      {
        image: "r.example:5000/a:1",
        target: "store",
        result: "pulled",
        at: at.toISOString(),
        seconds: 1.5,
        bytes: 42,
        source: "upstream r.example:5000",
      },
      {
        image: "r.example:5000/b:1",
        target: "store",
        result: "failed",
        at: at.toISOString(),
        source: "upstream r.example:5000",
        error: { code: "FERRY_MANIFEST_UNKNOWN", message: "no such tag" },
      },
    ]);
    log.record({ ...base, image: "r.example:5000/c:1", state: "pulled" }, at);
    assert.deepEqual(
      log.entries().map((e) => e.image),
      ["r.example:5000/b:1", "r.example:5000/c:1"],
    );
    log.record(
      { ...base, image: "r.example:5000/d:1", state: "pulled", bytes: 10, bytesFromPeers: 10 },
      at,
    );
    log.record(
      { ...base, image: "r.example:5000/e:1", state: "pulled", bytes: 10, bytesFromPeers: 4 },
      at,
    );
    assert.deepEqual(
      log.entries().map((e) => e.source),
      ["peers", "peers + upstream r.example:5000"],
    );
  });
});

describe("AgentState with progress and pins", () => {
  it("shows progress only while pulling, and keeps a pin while the image stays required", async () => {
    const { AgentState } = await import("./state.ts");
    const { parseReference } = await import("../reference/index.ts");
    const state = new AgentState(["store"]);
    const ref = parseReference("r.example:5000/a:1");
    state.setList([{ text: "r.example:5000/a:1", ref, platform: undefined, required: true }]);
    const base = { image: "r.example:5000/a:1", target: "store", required: true } as const;
    const progress = { done: 5, total: 10, downloaded: 5, bytesPerSecond: 5 };
    state.record({ ...base, state: "pulling", progress });
    assert.deepEqual(state.images()[0]?.targets.store?.progress, progress);
    state.record({ ...base, state: "pulled", pinned: true });
    assert.equal(state.images()[0]?.targets.store?.progress, undefined);
    assert.equal(state.images()[0]?.targets.store?.pinned, true);
    state.record({ ...base, state: "pulling" });
    assert.equal(state.images()[0]?.targets.store?.pinned, true);
    state.setList([{ text: "r.example:5000/a:1", ref, platform: undefined, required: false }]);
    state.record({ ...base, required: false, state: "present" });
    assert.equal(state.images()[0]?.targets.store?.pinned, undefined);
  });
});
