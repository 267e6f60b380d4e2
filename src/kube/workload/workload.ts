/**
 * The five workload kinds ferry watches and what it reads from them: the pod template, its images
 * (containers and initContainers; ephemeral containers are added to running pods only, never
 * pulled ahead), and whether an update changed them.
 */
import { createHash } from "node:crypto";
import type {
  V1CronJob,
  V1DaemonSet,
  V1Deployment,
  V1Job,
  V1ObjectMeta,
  V1PodSpec,
  V1PodTemplateSpec,
  V1StatefulSet,
} from "@kubernetes/client-node";

export type WorkloadKind = "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob";

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "Job",
  "CronJob",
];

/** Where each kind lives in the API (group/version and plural). */
export const WORKLOAD_RESOURCES: Readonly<
  Record<WorkloadKind, { group: string; version: string; plural: string }>
> = {
  Deployment: { group: "apps", version: "v1", plural: "deployments" },
  StatefulSet: { group: "apps", version: "v1", plural: "statefulsets" },
  DaemonSet: { group: "apps", version: "v1", plural: "daemonsets" },
  Job: { group: "batch", version: "v1", plural: "jobs" },
  CronJob: { group: "batch", version: "v1", plural: "cronjobs" },
};

export type WorkloadObject = V1Deployment | V1StatefulSet | V1DaemonSet | V1Job | V1CronJob;

/** A workload as ferry sees it: identity, template and its images. */
export interface Workload {
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string | undefined;
  readonly resourceVersion: string | undefined;
  readonly annotations: Readonly<Record<string, string>>;
  readonly podSpec: V1PodSpec | undefined;
  /** Images of containers then initContainers, de-duplicated, in first-seen order. */
  readonly images: readonly string[];
}

/** The pod template of a workload object; a CronJob's is inside its job template. */
export function podTemplateOf(
  kind: WorkloadKind,
  object: WorkloadObject,
): V1PodTemplateSpec | undefined {
  if (kind === "CronJob") return (object as V1CronJob).spec?.jobTemplate?.spec?.template;
  return (object as V1Deployment | V1StatefulSet | V1DaemonSet | V1Job).spec?.template;
}

/** Images a pod spec pulls before it runs: containers and initContainers (ephemeral ones excluded). */
export function podSpecImages(spec: V1PodSpec | undefined): string[] {
  if (spec === undefined) return [];
  const seen = new Set<string>();
  for (const container of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    const image = container.image?.trim();
    if (image) seen.add(image);
  }
  return [...seen];
}

export function toWorkload(kind: WorkloadKind, object: WorkloadObject): Workload {
  const meta: V1ObjectMeta = object.metadata ?? {};
  const podSpec = podTemplateOf(kind, object)?.spec;
  return {
    kind,
    namespace: meta.namespace ?? "default",
    name: meta.name ?? "",
    uid: meta.uid,
    resourceVersion: meta.resourceVersion,
    annotations: meta.annotations ?? {},
    podSpec,
    images: podSpecImages(podSpec),
  };
}

/** Stable identity of a workload across versions. */
export function workloadKey(w: Pick<Workload, "kind" | "namespace" | "name">): string {
  return `${w.kind}/${w.namespace}/${w.name}`;
}

/** True when the set of images differs (order and duplicates do not matter). */
export function imagesChanged(before: readonly string[], after: readonly string[]): boolean {
  const a = new Set(before);
  const b = new Set(after);
  if (a.size !== b.size) return true;
  for (const image of a) if (!b.has(image)) return true;
  return false;
}

/**
 * The images a template change brings: those in `after` that `before` lacked. Empty when the
 * update did not touch the images (a scale, a label, a status write).
 */
export function newTemplateImages(before: readonly string[], after: readonly string[]): string[] {
  const old = new Set(before);
  return after.filter((image) => !old.has(image));
}

/** Short stable hash of an image set, used to name a rollout. */
export function imageSetHash(images: readonly string[]): string {
  const sorted = [...new Set(images)].sort();
  return createHash("sha256").update(sorted.join("\n")).digest("hex").slice(0, 10);
}

const KIND_ABBREVIATION: Readonly<Record<WorkloadKind, string>> = {
  Deployment: "deploy",
  StatefulSet: "sts",
  DaemonSet: "ds",
  Job: "job",
  CronJob: "cj",
};

const MAX_NAME = 253;

/**
 * The PrePull object name for one rollout: `<name>-<kind>-<hash>`, a DNS subdomain (the workload
 * name is one already, the rest is lower-case alphanumerics), shortened to fit.
 */
export function rolloutName(w: Pick<Workload, "kind" | "name">, images: readonly string[]): string {
  const suffix = `-${KIND_ABBREVIATION[w.kind]}-${imageSetHash(images)}`;
  const head = w.name.slice(0, MAX_NAME - suffix.length).replace(/[.-]+$/, "");
  return `${head}${suffix}`;
}

/**
 * Whether the workload's own controller is still rolling out its current template, from the
 * status it reports: a new leader (or a fresh start) pre-pulls for such a workload as for a
 * change it saw. Objects without a status (never reconciled) say nothing.
 */
export function rolloutInProgress(kind: WorkloadKind, object: WorkloadObject): boolean {
  const generation = object.metadata?.generation;
  switch (kind) {
    case "Deployment": {
      const d = object as V1Deployment;
      const status = d.status;
      if (status?.observedGeneration === undefined) return false;
      if (generation !== undefined && status.observedGeneration < generation) return true;
      return (status.updatedReplicas ?? 0) < (d.spec?.replicas ?? 1);
    }
    case "StatefulSet": {
      const status = (object as V1StatefulSet).status;
      if (status?.observedGeneration === undefined) return false;
      if (generation !== undefined && status.observedGeneration < generation) return true;
      return (
        status.updateRevision !== undefined && status.updateRevision !== status.currentRevision
      );
    }
    case "DaemonSet": {
      const status = (object as V1DaemonSet).status;
      if (status?.observedGeneration === undefined) return false;
      if (generation !== undefined && status.observedGeneration < generation) return true;
      return (status.updatedNumberScheduled ?? 0) < status.desiredNumberScheduled;
    }
    case "Job":
    case "CronJob":
      return false;
  }
}
