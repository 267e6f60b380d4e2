/**
 * May a pod of this template land on this node? The scheduler's hard filters that depend only on
 * the template and the node: nodeName, nodeSelector, required node affinity, and tolerations of
 * NoSchedule/NoExecute taints. Soft preferences, resources and topology spread are left out: a
 * node that might run the pod is a node that should have its images.
 */
import type {
  V1Node,
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1PodSpec,
  V1Taint,
  V1Toleration,
} from "@kubernetes/client-node";

/** The taint a cordoned node carries (the node controller adds it for `spec.unschedulable`). */
export const UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable";

/** Tolerations the DaemonSet controller adds to every DaemonSet pod. */
export const DAEMONSET_TOLERATIONS: readonly V1Toleration[] = [
  { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" },
  { key: "node.kubernetes.io/disk-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/memory-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: "node.kubernetes.io/pid-pressure", operator: "Exists", effect: "NoSchedule" },
  { key: UNSCHEDULABLE_TAINT, operator: "Exists", effect: "NoSchedule" },
];

export type Ineligibility = "NodeName" | "NodeSelector" | "NodeAffinity" | "Taint" | "NoTemplate";

export type Eligibility =
  | { readonly eligible: true }
  | { readonly eligible: false; readonly reason: Ineligibility; readonly message: string };

export interface EligibilityOptions {
  /** Taint keys to ignore (ferry's own startup taint: pre-pulling onto a starting node is wanted). */
  readonly ignoreTaintKeys?: readonly string[];
  /** Extra tolerations the workload's controller adds (DaemonSets). */
  readonly extraTolerations?: readonly V1Toleration[];
}

const ELIGIBLE: Eligibility = { eligible: true };

function no(reason: Ineligibility, message: string): Eligibility {
  return { eligible: false, reason, message };
}

export function evaluateEligibility(
  spec: V1PodSpec | undefined,
  node: V1Node,
  options: EligibilityOptions = {},
): Eligibility {
  if (spec === undefined) return no("NoTemplate", "the workload has no pod template");
  const name = node.metadata?.name ?? "";
  const labels = node.metadata?.labels ?? {};
  if (spec.nodeName !== undefined && spec.nodeName !== "" && spec.nodeName !== name) {
    return no("NodeName", `the template names node ${spec.nodeName}`);
  }
  for (const [key, value] of Object.entries(spec.nodeSelector ?? {})) {
    if (labels[key] !== value) return no("NodeSelector", `node label ${key}=${value} is missing`);
  }
  const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined) {
    const terms = required.nodeSelectorTerms ?? [];
    if (!terms.some((term) => termMatches(term, name, labels))) {
      return no("NodeAffinity", "no required node affinity term matches the node");
    }
  }
  const tolerations = [...(spec.tolerations ?? []), ...(options.extraTolerations ?? [])];
  const ignored = new Set(options.ignoreTaintKeys ?? []);
  for (const taint of nodeTaints(node)) {
    if (taint.effect !== "NoSchedule" && taint.effect !== "NoExecute") continue;
    if (ignored.has(taint.key)) continue;
    if (!tolerations.some((t) => tolerates(t, taint))) {
      return no("Taint", `taint ${taint.key}:${taint.effect} is not tolerated`);
    }
  }
  return ELIGIBLE;
}

/** The node's taints, with the unschedulable taint added for a cordoned node that lacks it. */
function nodeTaints(node: V1Node): V1Taint[] {
  const taints = [...(node.spec?.taints ?? [])];
  if (node.spec?.unschedulable === true && !taints.some((t) => t.key === UNSCHEDULABLE_TAINT)) {
    taints.push({ key: UNSCHEDULABLE_TAINT, effect: "NoSchedule" });
  }
  return taints;
}

/** A term matches when all its expressions and fields do; an empty term matches nothing. */
export function termMatches(
  term: V1NodeSelectorTerm,
  nodeName: string,
  labels: Readonly<Record<string, string>>,
): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return false;
  return (
    expressions.every((r) => requirementMatches(r, labels[r.key])) &&
    fields.every((r) => r.key === "metadata.name" && fieldMatches(r, nodeName))
  );
}

export function requirementMatches(
  requirement: V1NodeSelectorRequirement,
  value: string | undefined,
): boolean {
  const values = requirement.values ?? [];
  switch (requirement.operator) {
    case "In":
      return value !== undefined && values.includes(value);
    case "NotIn":
      return value === undefined || !values.includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const bound = values.length === 1 ? parseInteger(values[0]) : undefined;
      const actual = parseInteger(value);
      if (bound === undefined || actual === undefined) return false;
      return requirement.operator === "Gt" ? actual > bound : actual < bound;
    }
    default:
      return false;
  }
}

function fieldMatches(requirement: V1NodeSelectorRequirement, nodeName: string): boolean {
  const values = requirement.values ?? [];
  if (requirement.operator === "In") return values.includes(nodeName);
  if (requirement.operator === "NotIn") return !values.includes(nodeName);
  return false;
}

function parseInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d+$/.test(text.trim())) return undefined;
  return Number.parseInt(text, 10);
}

/** The scheduler's toleration rule (v1.Toleration.ToleratesTaint). */
export function tolerates(toleration: V1Toleration, taint: V1Taint): boolean {
  if (
    toleration.effect !== undefined &&
    toleration.effect !== "" &&
    toleration.effect !== taint.effect
  ) {
    return false;
  }
  const key = toleration.key ?? "";
  const operator = toleration.operator ?? "Equal";
  if (key === "") return operator === "Exists";
  if (key !== taint.key) return false;
  if (operator === "Exists") return true;
  if (operator === "Equal") return (toleration.value ?? "") === (taint.value ?? "");
  return false;
}
