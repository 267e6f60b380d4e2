import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  type ImageNode,
  imageUsage,
  type PruneRule,
  planPrune,
  pruneRule,
  type StoreGraph,
} from "./prune-plan.ts";

const d = (n: string) => `sha256:${n.padStart(64, "0")}`;
const HOUR = 3_600_000;
const NOW = 1_000 * HOUR;

function image(
  reference: string,
  digests: string[],
  hoursAgo: number,
  more: Partial<ImageNode> = {},
): ImageNode {
  return {
    reference,
    digests: digests.map(d),
    pinned: false,
    leased: false,
    lastUsedAt: NOW - hoursAgo * HOUR,
    ...more,
  };
}

function graph(
  images: ImageNode[],
  sizes: Record<string, number>,
  keep: string[] = [],
): StoreGraph {
  return {
    images,
    blobs: new Map(Object.entries(sizes).map(([k, v]) => [d(k), v])),
    keep: new Set(keep.map(d)),
  };
}

// a: old, b: middle, c: new; "base" shared by a and b; "x" dangling; "l" leased by a pull.
const sizes = { base: 1000, a1: 100, b1: 200, c1: 300, x: 50, l: 70 };
const store = () =>
  graph(
    [image("a", ["a1", "base"], 72), image("b", ["b1", "base"], 48), image("c", ["c1"], 1)],
    sizes,
    ["l"],
  );
const names = (rule: PruneRule, g = store()) => planPrune(g, rule).images.map((i) => i.reference);

describe("planPrune", () => {
  it("by default removes only dangling blobs, never leased ones", () => {
    const plan = planPrune(store());
    assert.deepEqual(plan.images, []);
    assert.deepEqual(plan.blobs, [d("x")]);
    assert.equal(plan.bytes, 50);
    assert.equal(plan.storeBytes, 1720);
  });

  it("--all removes every unpinned, unleased image; a shared blob goes with its last user", () => {
    const g = store();
    const pinnedC = {
      ...g,
      images: g.images.map((i) => (i.reference === "c" ? { ...i, pinned: true } : i)),
    };
    const plan = planPrune(pinnedC, pruneRule({ all: true }, NOW));
    assert.deepEqual(
      plan.images.map((i) => [i.reference, i.blobs, i.bytes]),
      [
        ["a", 1, 100],
        ["b", 2, 1200],
      ],
    );
    assert.deepEqual(new Set(plan.blobs), new Set(["x", "a1", "b1", "base"].map(d)));
    assert.equal(plan.bytes, 1350);
  });

  it("--until keeps images used more recently than the cutoff", () => {
    assert.deepEqual(names(pruneRule({ untilMs: 48 * HOUR }, NOW)), ["a", "b"]);
    assert.deepEqual(names(pruneRule({ all: true, untilMs: 49 * HOUR }, NOW)), ["a"]);
    assert.deepEqual(names(pruneRule({ all: true, untilMs: 100 * HOUR }, NOW)), []);
  });

  it("--keep-storage evicts least recently used first and stops once the store fits", () => {
    // 1720 on disk; dangling x (50) goes first; a frees only a1 (base is shared with b).
    assert.deepEqual(names(pruneRule({ keepBytes: 1670 }, NOW)), []);
    assert.deepEqual(names(pruneRule({ keepBytes: 1669 }, NOW)), ["a"]);
    assert.deepEqual(names(pruneRule({ keepBytes: 1570 }, NOW)), ["a"]);
    assert.deepEqual(names(pruneRule({ keepBytes: 1569 }, NOW)), ["a", "b"]);
    assert.deepEqual(names(pruneRule({ keepBytes: 0 }, NOW)), ["a", "b", "c"]);
    // with --until, only images old enough are evicted, even if the store still does not fit
    assert.deepEqual(names(pruneRule({ keepBytes: 0, untilMs: 24 * HOUR }, NOW)), ["a", "b"]);
  });

  it("never removes pinned or leased images, whatever the rule", () => {
    const g = store();
    const guarded = {
      ...g,
      images: g.images.map((i) =>
        i.reference === "a"
          ? { ...i, pinned: true }
          : i.reference === "b"
            ? { ...i, leased: true }
            : i,
      ),
    };
    assert.deepEqual(
      names({ expire: { usedBefore: Infinity }, evict: { keepBytes: 0 } }, guarded),
      ["c"],
    );
  });

  it("orders ties by name, so plans are reproducible", () => {
    const g = graph([image("z", ["z1"], 5), image("m", ["m1"], 5)], { z1: 1, m1: 1 });
    assert.deepEqual(names({ evict: { keepBytes: 1 } }, g), ["m"]);
  });

  it("keeps every blob of every remaining image, and deletes only what nothing keeps (property)", () => {
    const digest = fc.integer({ min: 0, max: 11 }).map((n) => d(String(n)));
    const node = fc.record({
      reference: fc.string({ minLength: 1, maxLength: 4 }),
      digests: fc.uniqueArray(digest, { maxLength: 5 }),
      pinned: fc.boolean(),
      leased: fc.boolean(),
      lastUsedAt: fc.integer({ min: 0, max: 100 }),
    });
    const rule: fc.Arbitrary<PruneRule> = fc.record(
      {
        expire: fc.record({ usedBefore: fc.integer({ min: -1, max: 101 }) }),
        evict: fc.record(
          {
            keepBytes: fc.integer({ min: 0, max: 5000 }),
            freeBytes: fc.integer({ min: 0, max: 5000 }),
            usedBefore: fc.integer({ min: -1, max: 101 }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(node, { selector: (n) => n.reference, maxLength: 6 }),
        fc.array(fc.tuple(digest, fc.integer({ min: 0, max: 1000 }))),
        fc.uniqueArray(digest, { maxLength: 3 }),
        rule,
        (images, blobs, keep, r) => {
          const g: StoreGraph = { images, blobs: new Map(blobs), keep: new Set(keep) };
          const plan = planPrune(g, r);
          const removed = new Set(plan.images.map((i) => i.reference));
          const deleted = new Set(plan.blobs);
          assert.equal(deleted.size, plan.blobs.length, "each blob once");
          for (const i of images) {
            if (i.pinned || i.leased) assert.ok(!removed.has(i.reference));
            if (!removed.has(i.reference)) for (const x of i.digests) assert.ok(!deleted.has(x));
          }
          for (const x of deleted) assert.ok(g.blobs.has(x) && !g.keep.has(x));
          assert.equal(
            plan.bytes,
            plan.blobs.reduce((s, x) => s + (g.blobs.get(x) ?? 0), 0),
          );
        },
      ),
    );
  });
});

describe("imageUsage", () => {
  it("splits each image's size into shared and unique", () => {
    assert.deepEqual(
      imageUsage(store()).map((u) => [u.reference, u.bytes, u.sharedBytes, u.uniqueBytes]),
      [
        ["a", 1100, 1000, 100],
        ["b", 1200, 1000, 200],
        ["c", 300, 0, 300],
      ],
    );
  });
  it("counts a blob missing from disk as zero", () => {
    const g = graph([image("a", ["a1", "gone"], 1)], { a1: 10 });
    assert.deepEqual(imageUsage(g)[0]?.bytes, 10);
  });
});

describe("pruneRule", () => {
  it("maps the command line to a rule", () => {
    assert.deepEqual(pruneRule({}, NOW), {});
    assert.deepEqual(pruneRule({ all: true }, NOW), { expire: { usedBefore: Infinity } });
    assert.deepEqual(pruneRule({ untilMs: HOUR }, NOW), { expire: { usedBefore: NOW - HOUR } });
    assert.deepEqual(pruneRule({ all: true, keepBytes: 5 }, NOW), { evict: { keepBytes: 5 } });
    assert.deepEqual(pruneRule({ keepBytes: 5, untilMs: HOUR }, NOW), {
      evict: { keepBytes: 5, usedBefore: NOW - HOUR },
    });
  });
});
