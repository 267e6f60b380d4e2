import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Metrics } from "../observe/index.ts";
import {
  checkGateTimeout,
  checkPrePullBudget,
  MAX_PREPULL_BUDGET,
  parsePrePullBudget,
  startKubernetesMode,
} from "./mode.ts";

const invalid =
  (message: RegExp, hint: RegExp) => (e: Error & { code?: string; hint?: string }) => {
    assert.equal(e.code, "FERRY_INVALID_ARGUMENT");
    assert.match(e.message, message);
    assert.match(e.hint ?? "", hint);
    return true;
  };

describe("workload pre-pull settings of ferry agent --kubernetes", () => {
  it("--prepull-budget takes a whole number of nodes from 1", () => {
    assert.equal(parsePrePullBudget("1"), 1);
    assert.equal(parsePrePullBudget(" 12 "), 12);
    assert.equal(parsePrePullBudget(String(MAX_PREPULL_BUDGET)), MAX_PREPULL_BUDGET);
    for (const bad of ["0", "-1", "2.5", "three", "", "1e3", String(MAX_PREPULL_BUDGET + 1)])
      assert.throws(
        () => parsePrePullBudget(bad),
        invalid(/--prepull-budget must be a whole number/, /at once, cluster-wide \(default 3\)/),
        bad,
      );
    assert.throws(() => checkPrePullBudget(0, "prePullBudget"), invalid(/^prePullBudget /, /./));
  });

  it("--gate-timeout is at least a second", () => {
    assert.equal(checkGateTimeout(1000), 1000);
    assert.equal(checkGateTimeout(15 * 60_000), 15 * 60_000);
    for (const bad of [0, 999, -5000, 1.5, Number.NaN])
      assert.throws(
        () => checkGateTimeout(bad),
        invalid(/--gate-timeout must be at least 1s/, /default 10m/),
        String(bad),
      );
  });

  it("startKubernetesMode refuses bad values before it contacts the cluster", async () => {
    const options = {
      env: { NODE_NAME: "node-a", KUBECONFIG: "/nonexistent/kubeconfig" },
      metrics: new Metrics(),
      log: () => {},
    };
    await assert.rejects(
      startKubernetesMode({ ...options, prePullBudget: 0 }),
      invalid(/--prepull-budget/, /./),
    );
    await assert.rejects(
      startKubernetesMode({ ...options, gateTimeoutMs: 10 }),
      invalid(/--gate-timeout/, /./),
    );
  });
});
