import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { rank } from "./rendezvous.ts";

const digests = Array.from(
  { length: 2000 },
  (_, i) => `sha256:${createHash("sha256").update(String(i)).digest("hex")}`,
);
const members = Array.from({ length: 8 }, (_, i) => `198.18.0.${i + 10}:5001`);

describe("rendezvous hashing", () => {
  it("ranks the same way whatever order the members are listed in", () => {
    for (const d of digests.slice(0, 50)) {
      assert.deepEqual(rank(members, d), rank([...members].reverse(), d));
    }
  });

  it("spreads ownership over the members", () => {
    const owned = new Map<string, number>();
    for (const d of digests) {
      const owner = rank(members, d)[0] as string;
      owned.set(owner, (owned.get(owner) ?? 0) + 1);
    }
    assert.equal(owned.size, members.length);
    for (const n of owned.values())
      assert.ok(n > 150 && n < 350, `share ${n} of 2000 (expected ~250)`);
  });

  it("removing a member moves only its digests, each to its runner-up", () => {
    const gone = members[3] as string;
    const rest = members.filter((m) => m !== gone);
    for (const d of digests) {
      const before = rank(members, d);
      const after = rank(rest, d);
      if (before[0] === gone) assert.equal(after[0], before[1]);
      else assert.equal(after[0], before[0]);
    }
  });
});
