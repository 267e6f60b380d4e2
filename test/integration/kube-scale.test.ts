// The short form of `npm run bench:kube` (issue 22): N node agents against the fake API server,
// one required PrePull for every node, then a DaemonSet's rollout to every node. With per-node NodeImages, what the API server sends each
// node's agent and the writes it takes do not grow with N, and no two writes conflict; the
// aggregate is written by the elected controller, and an agent's fleet view (/status) lists the
// NodeImages only when asked. N = 4 and 16 here; the bench runs up to 1,000.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runKubeScale, type ScaleResult } from "../fixtures/kube-scale.ts";

describe("Kubernetes at fleet scale: per-node cost flat in N", { timeout: 300_000 }, () => {
  test("watch bytes and writes per node within 1.5x from 4 to 16 nodes, no conflicts", async () => {
    const small: ScaleResult = await runKubeScale({ nodes: 4, timeoutMs: 120_000 });
    const large: ScaleResult = await runKubeScale({ nodes: 16, timeoutMs: 120_000 });
    for (const r of [small, large]) {
      assert.equal(r.conflicts, 0, `no resourceVersion conflicts at N=${r.nodes}`);
      assert.equal(r.fleetNodes, r.nodes, "an agent's fleet view reads every node's NodeImages");
      assert.deepEqual(
        r.controllerNodeCalls,
        { list: 1, watch: 1 },
        "the leader's two controllers share one all-node list and watch",
      );
      assert.match(
        r.controllerMetrics,
        new RegExp(
          `^ferry_kube_prepull_ready_nodes\\{prepull="ferry-system/scale"\\} ${r.nodes}$`,
          "m",
        ),
      );
      assert.match(r.controllerMetrics, /^ferry_kube_nodeimages_writes_total\{what="spec"\} \d+$/m);
      assert.ok(r.reportedSeconds > 0 && r.aggregateSeconds > 0 && r.untaintedSeconds > 0);
      assert.ok(r.rolloutSeconds > 0, "the rollout reached every node through its NodeImages");
      assert.match(
        r.controllerMetrics,
        new RegExp(
          `^ferry_kube_prepull_ready_nodes\\{prepull="ferry-system/scale-agentd-[a-z]+-[0-9a-f]+"\\} ${r.nodes}$`,
          "m",
        ),
        "the rollout PrePull's ready nodes, from the NodeImages",
      );
    }
    assert.ok(
      large.maxWatchBytes <= 1.5 * small.perNode.watchBytes,
      `watch bytes per node: ${small.perNode.watchBytes} at 4, at most ${large.maxWatchBytes} at 16`,
    );
    assert.ok(
      large.perNode.writes <= 1.5 * small.perNode.writes,
      `writes per node: ${small.perNode.writes} at 4, ${large.perNode.writes} at 16`,
    );
  });

  test("the previous version's agents (every PrePull watched) grow with N and conflict", async () => {
    const small = await runKubeScale({ nodes: 4, report: "prepull", timeoutMs: 120_000 });
    const large = await runKubeScale({ nodes: 16, report: "prepull", timeoutMs: 120_000 });
    assert.ok(
      large.perNode.watchBytes > 1.5 * small.perNode.watchBytes,
      `watch bytes per node: ${small.perNode.watchBytes} at 4, ${large.perNode.watchBytes} at 16`,
    );
    assert.ok(large.conflicts > 0, "nodes writing one PrePull's status conflict");
  });
});
