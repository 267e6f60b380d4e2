import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Node, V1NodeSelectorRequirement, V1PodSpec } from "@kubernetes/client-node";
import {
  DAEMONSET_TOLERATIONS,
  evaluateEligibility,
  requirementMatches,
  tolerates,
} from "./eligibility.ts";

const STARTUP = "startup-taint.cluster-autoscaler.kubernetes.io/ferry-images";

function node(name: string, labels: Record<string, string>, spec: V1Node["spec"] = {}): V1Node {
  return { metadata: { name, labels }, spec };
}

function pod(extra: Partial<V1PodSpec> = {}): V1PodSpec {
  return { containers: [{ name: "c", image: "i" }], ...extra };
}

const gpu = node("gpu-1", { "kubernetes.io/hostname": "gpu-1", accel: "gpu", cores: "16" });
const cpu = node("cpu-1", { "kubernetes.io/hostname": "cpu-1", cores: "4" });

function affinity(...terms: V1NodeSelectorRequirement[][]): Partial<V1PodSpec> {
  return {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: terms.map((matchExpressions) => ({ matchExpressions })),
        },
      },
    },
  };
}

describe("node eligibility", () => {
  it("accepts any node for a plain template and refuses a missing template", () => {
    assert.deepEqual(evaluateEligibility(pod(), cpu), { eligible: true });
    assert.equal(evaluateEligibility(undefined, cpu).eligible, false);
  });

  it("honours nodeSelector", () => {
    assert.equal(evaluateEligibility(pod({ nodeSelector: { accel: "gpu" } }), gpu).eligible, true);
    const r = evaluateEligibility(pod({ nodeSelector: { accel: "gpu" } }), cpu);
    assert.equal(r.eligible, false);
    assert.equal(r.eligible === false && r.reason, "NodeSelector");
  });

  it("honours nodeName", () => {
    assert.equal(evaluateEligibility(pod({ nodeName: "gpu-1" }), gpu).eligible, true);
    const r = evaluateEligibility(pod({ nodeName: "gpu-1" }), cpu);
    assert.equal(r.eligible === false && r.reason, "NodeName");
  });

  it("evaluates each operator of a node selector requirement", () => {
    const req = (operator: string, values?: string[]) => ({ key: "k", operator, values });
    assert.equal(requirementMatches(req("In", ["a", "b"]), "b"), true);
    assert.equal(requirementMatches(req("In", ["a", "b"]), "c"), false);
    assert.equal(requirementMatches(req("In", ["a"]), undefined), false);
    assert.equal(requirementMatches(req("NotIn", ["a"]), "b"), true);
    assert.equal(requirementMatches(req("NotIn", ["a"]), "a"), false);
    assert.equal(requirementMatches(req("NotIn", ["a"]), undefined), true);
    assert.equal(requirementMatches(req("Exists"), ""), true);
    assert.equal(requirementMatches(req("Exists"), undefined), false);
    assert.equal(requirementMatches(req("DoesNotExist"), undefined), true);
    assert.equal(requirementMatches(req("DoesNotExist"), "x"), false);
    assert.equal(requirementMatches(req("Gt", ["8"]), "16"), true);
    assert.equal(requirementMatches(req("Gt", ["8"]), "8"), false);
    assert.equal(requirementMatches(req("Lt", ["8"]), "4"), true);
    assert.equal(requirementMatches(req("Lt", ["8"]), "16"), false);
    assert.equal(requirementMatches(req("Gt", ["8"]), "many"), false);
    assert.equal(requirementMatches(req("Gt", ["8", "9"]), "16"), false);
    assert.equal(requirementMatches(req("Gt", ["8"]), undefined), false);
    assert.equal(requirementMatches(req("Near", ["8"]), "8"), false);
  });

  it("ORs node selector terms and ANDs the requirements inside one", () => {
    const spec = pod(
      affinity(
        [{ key: "accel", operator: "In", values: ["gpu"] }],
        [
          { key: "cores", operator: "Lt", values: ["8"] },
          { key: "accel", operator: "DoesNotExist" },
        ],
      ),
    );
    assert.equal(evaluateEligibility(spec, gpu).eligible, true);
    assert.equal(evaluateEligibility(spec, cpu).eligible, true);
    const big = node("cpu-2", { cores: "32" });
    const r = evaluateEligibility(spec, big);
    assert.equal(r.eligible === false && r.reason, "NodeAffinity");
  });

  it("treats an empty term, or no terms, as matching nothing", () => {
    assert.equal(evaluateEligibility(pod(affinity([])), cpu).eligible, false);
    assert.equal(evaluateEligibility(pod(affinity()), cpu).eligible, false);
  });

  it("matches metadata.name fields", () => {
    const byName = (operator: string, values: string[]): Partial<V1PodSpec> => ({
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator, values }] }],
          },
        },
      },
    });
    assert.equal(evaluateEligibility(pod(byName("In", ["gpu-1"])), gpu).eligible, true);
    assert.equal(evaluateEligibility(pod(byName("In", ["gpu-1"])), cpu).eligible, false);
    assert.equal(evaluateEligibility(pod(byName("NotIn", ["gpu-1"])), cpu).eligible, true);
    assert.equal(evaluateEligibility(pod(byName("Exists", [])), cpu).eligible, false);
  });

  it("needs a toleration for every NoSchedule and NoExecute taint", () => {
    const tainted = node(
      "t",
      {},
      {
        taints: [
          { key: "dedicated", value: "db", effect: "NoSchedule" },
          { key: "soft", effect: "PreferNoSchedule" },
        ],
      },
    );
    const r = evaluateEligibility(pod(), tainted);
    assert.equal(r.eligible === false && r.reason, "Taint");
    const ok = pod({ tolerations: [{ key: "dedicated", operator: "Equal", value: "db" }] });
    assert.equal(evaluateEligibility(ok, tainted).eligible, true);
    const wrongValue = pod({ tolerations: [{ key: "dedicated", value: "web" }] });
    assert.equal(evaluateEligibility(wrongValue, tainted).eligible, false);
    const wrongEffect = pod({
      tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoExecute" }],
    });
    assert.equal(evaluateEligibility(wrongEffect, tainted).eligible, false);
    const all = pod({ tolerations: [{ operator: "Exists" }] });
    assert.equal(evaluateEligibility(all, tainted).eligible, true);
  });

  it("applies the toleration rules", () => {
    const taint = { key: "k", value: "v", effect: "NoExecute" };
    assert.equal(tolerates({ key: "k", operator: "Exists" }, taint), true);
    assert.equal(tolerates({ key: "k", value: "v" }, taint), true);
    assert.equal(tolerates({ key: "k", value: "w" }, taint), false);
    assert.equal(tolerates({ key: "other", operator: "Exists" }, taint), false);
    assert.equal(tolerates({ operator: "Exists", effect: "NoExecute" }, taint), true);
    assert.equal(tolerates({ operator: "Equal" }, taint), false);
    assert.equal(tolerates({ key: "k", operator: "Gt", value: "1" }, taint), false);
  });

  it("ignores ferry's startup taint, so a starting node gets its images", () => {
    const starting = node(
      "new",
      {},
      { taints: [{ key: STARTUP, value: "pending", effect: "NoSchedule" }] },
    );
    assert.equal(evaluateEligibility(pod(), starting).eligible, false);
    assert.equal(
      evaluateEligibility(pod(), starting, { ignoreTaintKeys: [STARTUP] }).eligible,
      true,
    );
  });

  it("treats a cordoned node as tainted unschedulable, which DaemonSets tolerate", () => {
    const cordoned = node("c", {}, { unschedulable: true });
    assert.equal(evaluateEligibility(pod(), cordoned).eligible, false);
    const ds = { extraTolerations: DAEMONSET_TOLERATIONS };
    assert.equal(evaluateEligibility(pod(), cordoned, ds).eligible, true);
  });
});
