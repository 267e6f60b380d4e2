/**
 * The controller's writes to rollout PrePulls: create one for a rollout (with the template's and
 * its ServiceAccount's pull secrets), merge-patch its annotations (grants, gate record), delete
 * a superseded one.
 */
import {
  type CoreV1Api,
  type CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { apiStatus } from "../api-errors.ts";
import type { EventSink } from "./events.ts";
import {
  GRANTS_ANNOTATION,
  PREPULL_API_VERSION,
  PREPULL_GROUP,
  PREPULL_KIND,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  type PrePullObject,
  WORKLOAD_ANNOTATION,
  WORKLOAD_PREPULL_LABEL,
  WORKLOAD_UID_LABEL,
} from "./prepull.ts";
import { WORKLOAD_RESOURCES, type Workload } from "./workload.ts";

export const MAX_CONFLICT_RETRIES = 8;

export class RolloutPrePullWrites {
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #onEvent: EventSink;

  constructor(custom: CustomObjectsApi, core: CoreV1Api, onEvent: EventSink) {
    this.#custom = custom;
    this.#core = core;
    this.#onEvent = onEvent;
  }

  async create(name: string, w: Workload): Promise<PrePullObject | undefined> {
    const { group, version } = WORKLOAD_RESOURCES[w.kind];
    const body: PrePullObject = {
      apiVersion: PREPULL_API_VERSION,
      kind: PREPULL_KIND,
      metadata: {
        name,
        namespace: w.namespace,
        labels: {
          [WORKLOAD_PREPULL_LABEL]: "true",
          ...(w.uid === undefined ? {} : { [WORKLOAD_UID_LABEL]: w.uid }),
          "app.kubernetes.io/managed-by": "ferry",
        },
        annotations: { [WORKLOAD_ANNOTATION]: `${w.kind}/${w.name}`, [GRANTS_ANNOTATION]: "{}" },
        ...(w.uid === undefined
          ? {}
          : {
              // Garbage-collected with its workload.
              ownerReferences: [
                { apiVersion: `${group}/${version}`, kind: w.kind, name: w.name, uid: w.uid },
              ],
            }),
      },
      spec: {
        images: [...w.images],
        required: false,
        imagePullSecrets: (await this.#pullSecrets(w)).map((name) => ({ name })),
      },
    };
    try {
      return (await this.#custom.createNamespacedCustomObject({
        group: PREPULL_GROUP,
        version: PREPULL_VERSION,
        namespace: w.namespace,
        plural: PREPULL_PLURAL,
        body,
      })) as PrePullObject;
    } catch (error) {
      if (apiStatus(error) === 409) {
        // Already there (a previous leader's, or the watch has not shown it yet).
        return (await this.#custom.getNamespacedCustomObject({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          namespace: w.namespace,
          plural: PREPULL_PLURAL,
          name,
        })) as PrePullObject;
      }
      throw error;
    }
  }

  /** The template's imagePullSecrets, then its ServiceAccount's, by name (as kubelet merges them). */
  async #pullSecrets(w: Workload): Promise<string[]> {
    const names = new Set(
      (w.podSpec?.imagePullSecrets ?? []).map((s) => s.name ?? "").filter(Boolean),
    );
    const account = w.podSpec?.serviceAccountName || w.podSpec?.serviceAccount || "default";
    try {
      const sa = await this.#core.readNamespacedServiceAccount({
        name: account,
        namespace: w.namespace,
      });
      for (const s of sa.imagePullSecrets ?? []) if (s.name) names.add(s.name);
    } catch (error) {
      if (apiStatus(error) !== 404) {
        this.#onEvent({
          type: "error",
          where: `serviceaccount ${w.namespace}/${account}`,
          error,
        });
      }
    }
    return [...names];
  }

  /**
   * Merge-patches annotations of a rollout PrePull. No resourceVersion precondition: the elected
   * controller is their only writer, and the NodeImages aggregate writes the same object's status.
   */
  async annotate(prepull: PrePullObject, annotations: Record<string, string>): Promise<void> {
    await this.#custom.patchNamespacedCustomObject(
      {
        group: PREPULL_GROUP,
        version: PREPULL_VERSION,
        namespace: prepull.metadata.namespace ?? "default",
        plural: PREPULL_PLURAL,
        name: prepull.metadata.name,
        body: { metadata: { annotations } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }

  /** Deletes a PrePull; one already gone is fine. */
  async delete(prepull: PrePullObject): Promise<void> {
    try {
      await this.#custom.deleteNamespacedCustomObject({
        group: PREPULL_GROUP,
        version: PREPULL_VERSION,
        namespace: prepull.metadata.namespace ?? "default",
        plural: PREPULL_PLURAL,
        name: prepull.metadata.name,
      });
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
    }
  }
}
