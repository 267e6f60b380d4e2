// The soak's fault schedule (test/fixtures/soak/schedule.ts): bounded, and every outage meets
// every kind of work, which lands inside it.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  FAULT_KINDS,
  freshImagesNeeded,
  OUTAGE_KINDS,
  planFaults,
  WORK_KINDS,
} from "./fixtures/soak/schedule.ts";

test("a short fault phase still plans every outage × work pairing once", () => {
  const plan = planFaults({ durationMs: 1000, holdMs: 2500 });
  const outages = plan.filter((e) => e.holdMs > 0);
  assert.equal(outages.length, OUTAGE_KINDS.length * WORK_KINDS.length);
  const pairs = new Set(
    outages.map((o) => `${o.kind}+${plan.find((w) => w.holdMs === 0 && w.at > o.at)?.kind}`),
  );
  assert.equal(pairs.size, OUTAGE_KINDS.length * WORK_KINDS.length);
  assert.deepEqual(new Set(plan.map((e) => e.kind)), new Set(FAULT_KINDS));
});

test("work starts inside its outage; outages never overlap; the count follows the duration", () => {
  const plan = planFaults({ durationMs: 600_000, holdMs: 8000 });
  const outages = plan.filter((e) => e.holdMs > 0);
  assert.equal(outages.length, Math.floor(600_000 / 16_000));
  for (const [i, o] of outages.entries()) {
    const next = outages[i + 1];
    if (next !== undefined) assert.ok(o.at + o.holdMs < next.at, "one outage at a time");
    const work = plan.filter((w) => w.holdMs === 0 && w.at >= o.at && w.at < o.at + o.holdMs);
    assert.equal(work.length, 1, `one piece of work inside the outage at ${o.at}`);
  }
  assert.equal(freshImagesNeeded(plan), outages.length);
});
