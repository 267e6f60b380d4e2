import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Metrics } from "../observe/index.ts";
import { Store } from "../store/index.ts";
import { AgentMetrics } from "./metrics.ts";
import { AgentPolicy, createStoreMeter } from "./policy-run.ts";

describe("retention policy runs", () => {
  it("applies the policy to the store, logs and counts it, and measures the store", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-policy-"));
    try {
      const store = await Store.open(dir);
      const metrics = new AgentMetrics(new Metrics());
      const logs: Array<Record<string, unknown>> = [];
      const policy = new AgentPolicy({
        store,
        schedule: "0 * * * *",
        retention: { highPercent: 90, lowPercent: 80 },
        metrics,
        log: (e) => logs.push(e),
      });
      await policy.runOnce();
      const line = logs.find((l) => l.msg === "retention policy applied");
      assert.ok(line);
      assert.equal(typeof line.usagePercent, "number");
      assert.deepEqual(policy.stats().lastReport?.removedImages, []);
      assert.equal(policy.stats().cron, "0 * * * *");
      await createStoreMeter(store, metrics)();
      assert.ok(metrics.value("ferry_agent_store_filesystem_used_percent") > 0);
      assert.match(metrics.render(), /^ferry_agent_store_bytes 0$/m);
      await policy.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
