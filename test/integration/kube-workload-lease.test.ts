// Leader election over a Lease against the fake API server: one leader at a time, renewals
// keep it, and when the leader can no longer reach the API server it stops acting before the
// other candidate sees the Lease expire and takes over.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { LeaderElection } from "../../src/kube/workload/lease.ts";
import { type FakeApiServer, startFakeApiServer } from "../fixtures/kube-apiserver.ts";
import { until } from "../fixtures/until.ts";

const WAIT_MS = 30_000;
const NS = "ferry-system";

describe("workload Lease", { timeout: 60_000 }, () => {
  let api: FakeApiServer;
  const candidates = new Map<string, LeaderElection>();
  /** Every moment (sampled) at which more than one candidate believed it leads. */
  let overlaps = 0;
  let sampler: NodeJS.Timeout | undefined;

  const leaders = () => [...candidates].filter(([, c]) => c.isLeader).map(([name]) => name);
  const waitFor = (what: string, probe: () => boolean) =>
    until(what, probe, WAIT_MS, { everyMs: 10 });
  const candidate = async (name: string) => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile((await api.kubeconfigFor(name)).path);
    const election = new LeaderElection({
      kubeConfig,
      namespace: NS,
      identity: name,
      leaseDurationMs: 3_000,
      onStartedLeading: () => {},
    });
    candidates.set(name, election);
    election.start();
    return election;
  };

  before(async () => {
    api = await startFakeApiServer();
    sampler = setInterval(() => {
      if (leaders().length > 1) overlaps++;
    }, 5);
  });
  after(async () => {
    clearInterval(sampler);
    api.beforeRequest = undefined;
    await Promise.allSettled([...candidates.values()].map((c) => c.stop()));
    await api?.stop();
  });

  test("the first candidate leads and keeps the Lease by renewing it", async () => {
    await candidate("lease-a");
    await waitFor("lease-a leading", () => leaders().includes("lease-a"));
    await candidate("lease-b");
    const renewals = () =>
      api.calls.filter(
        (c) => c.resource === "leases" && c.verb === "update" && c.user === "lease-a",
      ).length;
    const start = renewals();
    // A lease duration's worth of renewals: lease-b must never take over meanwhile.
    await waitFor("three renewals", () => renewals() >= start + 3);
    assert.deepEqual(leaders(), ["lease-a"]);
    const lease = api.get("coordination.k8s.io/v1", "Lease", "ferry-workload-prepull", NS);
    assert.equal(
      (lease?.["spec"] as { holderIdentity?: string } | undefined)?.holderIdentity,
      "lease-a",
    );
    assert.equal(
      api.calls.some(
        (c) =>
          c.resource === "leases" && c.user === "lease-b" && c.verb !== "get" && c.status < 300,
      ),
      false,
      "lease-b wrote nothing",
    );
  });

  test("a leader cut off from the API server stops leading; the other takes over after the Lease expires", async () => {
    // lease-a's requests now fail (as if its node lost the network), without giving the Lease up.
    api.beforeRequest = (call) => {
      if (call.user === "lease-a") throw new Error("lease-a is partitioned");
    };
    await waitFor("lease-b leading", () => leaders().includes("lease-b"));
    assert.deepEqual(leaders(), ["lease-b"]);
    const lease = api.get("coordination.k8s.io/v1", "Lease", "ferry-workload-prepull", NS);
    const spec = lease?.["spec"] as
      | { holderIdentity?: string; leaseTransitions?: number }
      | undefined;
    assert.equal(spec?.holderIdentity, "lease-b");
    assert.equal(spec?.leaseTransitions, 1);
    // lease-a comes back: it sees lease-b renewing and does not take the Lease back.
    api.beforeRequest = undefined;
    const updates = () =>
      api.calls.filter(
        (c) => c.resource === "leases" && c.verb === "update" && c.user === "lease-b",
      ).length;
    const start = updates();
    await waitFor("lease-b renewing", () => updates() >= start + 3);
    assert.deepEqual(leaders(), ["lease-b"]);
    assert.equal(overlaps, 0, "never two leaders at once");
  });
});
