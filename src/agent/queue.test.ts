import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatReference, parseReference } from "../reference/index.ts";
import { PullQueue } from "./queue.ts";
import type { ImageEntry, WarmFunction, WarmResult } from "./types.ts";

const entry = (text: string, platform?: string): ImageEntry => ({
  text,
  ref: parseReference(text),
  platform,
  required: true,
});

/** A warm function whose pulls finish when the test says so. */
function controlledWarm() {
  const calls: string[] = [];
  const waiting = new Map<string, Array<() => void>>();
  const warm: WarmFunction = async (images, { signal, onResult }) => {
    const image = formatReference(images[0]!.ref);
    calls.push(image);
    onResult?.({ image, target: "store", required: true, state: "pulling" });
    await new Promise<void>((resolve, reject) => {
      const list = waiting.get(image) ?? [];
      list.push(resolve);
      waiting.set(image, list);
      signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true });
    }).catch(() => undefined);
    const result: WarmResult = signal?.aborted
      ? {
          image,
          target: "store",
          required: true,
          state: "failed",
          error: { code: "FERRY_INTERRUPTED", message: "cancelled" },
        }
      : { image, target: "store", required: true, state: "pulled", digest: "sha256:x" };
    onResult?.(result);
    return [result];
  };
  const finish = (image: string) => {
    const list = waiting.get(image) ?? [];
    waiting.delete(image);
    for (const resolve of list) resolve();
  };
  return { warm, calls, finish, running: () => [...waiting.keys()] };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("pull queue", () => {
  it("repeats of an image still waiting join its one pull", async () => {
    const w = controlledWarm();
    const q = new PullQueue({ warm: w.warm, concurrency: 1 });
    q.add(entry("r.example/blocker:1"), "start");
    const first = q.add(entry("r.example/app:1"), "webhook");
    const second = q.add(entry("r.example/app:1"), "webhook");
    const third = q.add(entry("r.example/app"), "schedule"); // app:latest: another tag, another pull
    assert.deepEqual([first.outcome, second.outcome], ["queued", "merged"]);
    assert.equal(third.outcome, "queued");
    assert.equal(q.depth, 3);
    w.finish("r.example/blocker:1");
    await tick();
    w.finish("r.example/app:1");
    const [a, b] = await Promise.all([first.done, second.done]);
    assert.equal(a, b);
    assert.deepEqual(
      w.calls.filter((c) => c === "r.example/app:1"),
      ["r.example/app:1"],
    );
    assert.equal(q.stats().merged, 1);
    w.finish("r.example/app:latest");
    await third.done;
    await q.close(1000);
  });

  it("repeats while an image is being pulled cost one more pass after it, however many", async () => {
    const w = controlledWarm();
    const q = new PullQueue({ warm: w.warm });
    const first = q.add(entry("r.example/app:1"), "schedule");
    await tick();
    assert.deepEqual(w.running(), ["r.example/app:1"]);
    const again = [1, 2, 3, 4].map(() => q.add(entry("r.example/app:1"), "webhook"));
    assert.deepEqual(
      again.map((a) => a.outcome),
      ["again", "again", "again", "again"],
    );
    assert.equal(q.depth, 2);
    w.finish("r.example/app:1");
    await first.done;
    await tick();
    assert.equal(w.calls.length, 2, "one follow-up pass, not four");
    w.finish("r.example/app:1");
    await Promise.all(again.map((a) => a.done));
    assert.equal(w.calls.length, 2);
    assert.equal(q.depth, 0);
    await q.close(1000);
  });

  it("the same reference for another platform is another pull", async () => {
    const w = controlledWarm();
    const q = new PullQueue({ warm: w.warm });
    q.add(entry("r.example/app:1", "linux/amd64"), "list");
    const other = q.add(entry("r.example/app:1", "linux/arm64"), "list");
    assert.equal(other.outcome, "queued");
    await tick();
    assert.equal(w.calls.length, 2);
    w.finish("r.example/app:1");
    await q.close(1000);
  });

  it("runs at most `concurrency` pulls at once and reports every result", async () => {
    const w = controlledWarm();
    const results: string[] = [];
    const depths: number[] = [];
    const q = new PullQueue({
      warm: w.warm,
      concurrency: 2,
      onResult: (r) => results.push(`${r.image} ${r.state}`),
      onDepth: (d) => depths.push(d),
    });
    const all = q.run(
      ["a", "b", "c"].map((n) => entry(`r.example/${n}:1`)),
      "start",
    );
    await tick();
    assert.equal(w.running().length, 2);
    for (const n of ["a", "b"]) w.finish(`r.example/${n}:1`);
    await tick();
    await tick();
    w.finish("r.example/c:1");
    const done = await all;
    assert.deepEqual(
      done.map((r) => r.state),
      ["pulled", "pulled", "pulled"],
    );
    assert.ok(
      results.includes("r.example/c:1 pulling") && results.includes("r.example/c:1 pulled"),
    );
    assert.equal(depths.at(-1), 0);
    await q.close(1000);
  });

  it("close: waiting requests end with no results, pulls in flight are cancelled after the grace period", async () => {
    const w = controlledWarm();
    const q = new PullQueue({ warm: w.warm, concurrency: 1 });
    const running = q.add(entry("r.example/slow:1"), "start");
    const waiting = q.add(entry("r.example/next:1"), "start");
    await tick();
    const started = Date.now();
    await q.close(50);
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(await waiting.done, []);
    assert.equal((await running.done)[0]?.error?.code, "FERRY_INTERRUPTED");
    assert.deepEqual(w.calls, ["r.example/slow:1"]);
    assert.throws(() => q.add(entry("r.example/late:1"), "webhook"), { code: "FERRY_INTERRUPTED" });
  });

  it("close lets a pull that ends within the grace period finish", async () => {
    const w = controlledWarm();
    const q = new PullQueue({ warm: w.warm });
    const running = q.add(entry("r.example/app:1"), "start");
    await tick();
    const closing = q.close(5000);
    setTimeout(() => w.finish("r.example/app:1"), 20);
    await closing;
    assert.equal((await running.done)[0]?.state, "pulled");
  });
});
