/**
 * Where a node agent learns what its node should hold and reports what it holds, two ways:
 * - "nodeimages": its own NodeImages object only (watched by name; the elected controller
 *   matches PrePulls to nodes and aggregates), so its API cost is flat in the fleet's size;
 * - "prepull" (the previous version's way, kept for clusters mid-upgrade): every PrePull watched,
 *   matched here, and this node's entry written into each one's status.nodes.
 */
import {
  type CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Node,
} from "@kubernetes/client-node";
import { type Credential, canonicalHost } from "../config/index.ts";
import type { Reference } from "../reference/index.ts";
import { apiMessage } from "./api-errors.ts";
import type { EventRecorder } from "./events.ts";
import { type FleetView, fleetView, imageKey } from "./fleet.ts";
import { matchingPrePulls } from "./image-sources.ts";
import {
  NODE_IMAGES_KIND,
  NODE_IMAGES_PLURAL,
  PREPULL_GROUP,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  WORKLOAD_PREPULL_LABEL,
} from "./names.ts";
import { type AssignedImage, labelsHash, type NodeImagesObject } from "./node-images.ts";
import { PrePullReport } from "./node-prepull-report.ts";
import { secretCredential } from "./node-target.ts";
import {
  type NodeImageStatus,
  nodeStatus,
  type PrePull,
  prepullKey,
  sameNodeStatus,
} from "./prepull.ts";
import { credentialsFromSecret } from "./pull-secrets.ts";
import { announceReport } from "./report-events.ts";
import { CollectionWatch } from "./watcher.ts";

export type ReportMode = "nodeimages" | "prepull";
export const REPORT_MODES: readonly ReportMode[] = ["nodeimages", "prepull"];
/** `ferry agent --kubernetes`'s: "prepull" only while agents of the previous version remain. */
export const DEFAULT_REPORT_MODE: ReportMode = "nodeimages";

export interface Assignments {
  start(): Promise<void>;
  stop(): void;
  /** namespace/name of the PrePulls selecting the node */
  prepullKeys(): string[];
  /** list sources: PrePulls matched here, or the images assigned by the controller */
  sources(): { prepulls: PrePull[]; assigned: AssignedImage[] };
  /** Why what the node should hold is not known yet (the taint stays), or undefined. */
  problem(): string | undefined;
  /** The credential for the image from its PrePulls' pull secrets. */
  credential(
    image: string,
    ref: Reference,
    naming: ReadonlySet<string> | undefined,
  ): Promise<Credential | undefined>;
  /** Writes this node's report when it changed. */
  report(live: (image: string) => NodeImageStatus): Promise<void>;
  fleet(listed: readonly string[], live: (image: string) => NodeImageStatus): FleetView;
}

export interface AssignmentsOptions {
  readonly config: KubeConfig;
  readonly core: CoreV1Api;
  readonly nodeName: string;
  /** the node as last watched */
  readonly node: () => V1Node | undefined;
  readonly events: EventRecorder;
  readonly onChange: () => void;
  readonly onError: (what: string) => (error: unknown) => void;
  readonly log: (entry: Record<string, unknown>) => void;
}

export function assignments(mode: ReportMode, o: AssignmentsOptions): Assignments {
  return mode === "nodeimages" ? new OwnNodeImages(o) : new EveryPrePull(o);
}

const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
/**
 * The fleet view's other columns: every node's NodeImages, listed only when someone asks for the
 * view and at most this often, so an agent's API cost stays flat when nobody looks.
 */
const FLEET_LIST_MS = 10_000;

class OwnNodeImages implements Assignments {
  readonly #o: AssignmentsOptions;
  readonly #custom: CustomObjectsApi;
  readonly #own: CollectionWatch<NodeImagesObject>;
  /** Every node's NodeImages, listed only when the fleet view is asked for, at most every FLEET_LIST_MS. */
  #fleet: NodeImagesObject[] = [];
  #fleetListed = 0;
  #fleetListing: Promise<void> | undefined;

  constructor(o: AssignmentsOptions) {
    this.#o = o;
    this.#custom = o.config.makeApiClient(CustomObjectsApi);
    const fieldSelector = `metadata.name=${o.nodeName}`;
    this.#own = new CollectionWatch<NodeImagesObject>({
      config: o.config,
      path: `/apis/${PREPULL_GROUP}/${PREPULL_VERSION}/${NODE_IMAGES_PLURAL}`,
      fieldSelector,
      list: async () =>
        (await this.#custom.listClusterCustomObject({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          plural: NODE_IMAGES_PLURAL,
          fieldSelector,
        })) as { items: NodeImagesObject[] },
      onChange: o.onChange,
      onError: o.onError("this node's NodeImages"),
    });
  }

  start(): Promise<void> {
    return this.#own.start();
  }

  stop(): void {
    this.#own.stop();
  }

  #object(): NodeImagesObject | undefined {
    return this.#own.items[0];
  }

  #assigned(): AssignedImage[] {
    return this.#object()?.spec?.images ?? [];
  }

  prepullKeys(): string[] {
    return [...new Set(this.#assigned().flatMap((a) => a.prepulls))].sort();
  }

  sources(): { prepulls: PrePull[]; assigned: AssignedImage[] } {
    return { prepulls: [], assigned: this.#assigned() };
  }

  problem(): string | undefined {
    const own = this.#object();
    const where = `${NODE_IMAGES_KIND} ${this.#o.nodeName}`;
    if (own?.spec === undefined) return `${where}: not yet written by the elected controller`;
    // Written for other labels (the node's changed since): the PrePulls may select it otherwise.
    const labels = this.#o.node()?.metadata?.labels ?? {};
    if (own.spec.nodeLabels !== labelsHash(labels))
      return `${where}: written for other node labels; waiting for the controller`;
    return undefined;
  }

  async credential(image: string, ref: Reference): Promise<Credential | undefined> {
    const host = canonicalHost(ref.domain);
    const secrets = this.#assigned().find((a) => imageKey(a.image) === image);
    for (const key of secrets?.pullSecrets ?? []) {
      const [namespace = "", name = ""] = key.split("/");
      try {
        const secret = await this.#o.core.readNamespacedSecret({ name, namespace });
        const credential = credentialsFromSecret(secret).get(host);
        if (credential !== undefined) return credential;
      } catch (error) {
        this.#o.log({
          level: "warn",
          msg: "pull secret not read",
          secret: key,
          error: apiMessage(error),
        });
      }
    }
    return undefined;
  }

  async report(live: (image: string) => NodeImageStatus): Promise<void> {
    const own = this.#object();
    if (own?.spec === undefined) return;
    const mine = nodeStatus(
      own.spec.images.map((a) => live(a.image)),
      new Date(),
    );
    const before = own.status;
    if (sameNodeStatus(before, mine)) return;
    try {
      // Only this agent writes this status: no resourceVersion, no conflict with anyone.
      await this.#custom.patchClusterCustomObjectStatus(
        {
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          plural: NODE_IMAGES_PLURAL,
          name: this.#o.nodeName,
          body: { status: mine },
        },
        MERGE,
      );
    } catch (error) {
      this.#o.log({
        level: "warn",
        msg: "NodeImages status not written",
        error: apiMessage(error),
      });
      return;
    }
    const involved = {
      apiVersion: `${PREPULL_GROUP}/${PREPULL_VERSION}`,
      kind: NODE_IMAGES_KIND,
      name: this.#o.nodeName,
      uid: own.metadata?.uid,
    };
    announceReport(this.#o.events, this.#o.nodeName, involved, before, mine);
  }

  fleet(listed: readonly string[], live: (image: string) => NodeImageStatus): FleetView {
    this.#refreshFleet();
    // The PrePulls as the nodes' NodeImages name them, each node's report as its entry: this
    // node's from its own object (its column is live), the others' from the last list.
    const byKey = new Map<string, PrePull>();
    const others = this.#fleet.filter((n) => n.metadata?.name !== this.#o.nodeName);
    for (const n of [this.#object(), ...others]) {
      const node = n?.metadata?.name ?? "";
      const states = new Map((n?.status?.images ?? []).map((i) => [i.image, i]));
      for (const a of n?.spec?.images ?? [])
        for (const key of a.prepulls) {
          const [namespace = "", name = ""] = key.split("/");
          const p: PrePull = byKey.get(key) ?? {
            metadata: { namespace, name },
            spec: { images: [] },
            status: { nodes: {} },
          };
          if (!p.spec?.images?.includes(a.image)) p.spec?.images?.push(a.image);
          if (a.required && p.spec) p.spec.required = true;
          const state = states.get(a.image);
          const nodes = p.status?.nodes;
          if (state !== undefined && nodes !== undefined && n?.status !== undefined) {
            const entry = nodes[node] ?? { ...n.status, images: [] };
            entry.images.push(state);
            nodes[node] = entry;
          }
          byKey.set(key, p);
        }
    }
    const mine = new Set(this.prepullKeys());
    return fleetView({
      node: this.#o.nodeName,
      prepulls: [...byKey.values()],
      matching: mine,
      listed,
      live,
    });
  }

  /** Lists every NodeImages in the background when the last list is older than FLEET_LIST_MS. */
  #refreshFleet(): void {
    if (this.#fleetListing !== undefined || Date.now() - this.#fleetListed < FLEET_LIST_MS) return;
    this.#fleetListing = this.#custom
      .listClusterCustomObject({
        group: PREPULL_GROUP,
        version: PREPULL_VERSION,
        plural: NODE_IMAGES_PLURAL,
      })
      .then((list) => {
        this.#fleet = (list as { items: NodeImagesObject[] }).items;
        this.#fleetListed = Date.now();
      })
      .catch((error: unknown) =>
        this.#o.log({
          level: "warn",
          msg: "fleet view: NodeImages not listed",
          error: apiMessage(error),
        }),
      )
      .finally(() => {
        this.#fleetListing = undefined;
      });
  }
}

class EveryPrePull implements Assignments {
  readonly #o: AssignmentsOptions;
  readonly #prepulls: CollectionWatch<PrePull>;
  readonly #report: PrePullReport;

  constructor(o: AssignmentsOptions) {
    this.#o = o;
    const custom = o.config.makeApiClient(CustomObjectsApi);
    this.#report = new PrePullReport({
      custom,
      nodeName: o.nodeName,
      events: o.events,
      log: o.log,
    });
    // Rollout PrePulls (labelled by the workload controller) are pulled by its node runner.
    const prepullSelector = `!${WORKLOAD_PREPULL_LABEL}`;
    this.#prepulls = new CollectionWatch<PrePull>({
      config: o.config,
      path: `/apis/${PREPULL_GROUP}/${PREPULL_VERSION}/${PREPULL_PLURAL}`,
      labelSelector: prepullSelector,
      list: async () =>
        (await custom.listCustomObjectForAllNamespaces({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          resourcePlural: PREPULL_PLURAL,
          labelSelector: prepullSelector,
        })) as { items: PrePull[]; metadata?: { resourceVersion?: string } },
      onChange: o.onChange,
      onError: o.onError("PrePulls"),
    });
  }

  start(): Promise<void> {
    return this.#prepulls.start();
  }

  stop(): void {
    this.#prepulls.stop();
  }

  #matching(): PrePull[] {
    return matchingPrePulls(this.#prepulls.items, this.#o.node()?.metadata?.labels ?? {});
  }

  prepullKeys(): string[] {
    return this.#matching().map(prepullKey);
  }

  sources(): { prepulls: PrePull[]; assigned: AssignedImage[] } {
    return { prepulls: this.#matching(), assigned: [] };
  }

  problem(): string | undefined {
    return undefined;
  }

  credential(
    _image: string,
    ref: Reference,
    naming: ReadonlySet<string> | undefined,
  ): Promise<Credential | undefined> {
    return secretCredential(this.#o.core, this.#matching(), naming, ref, this.#o.log);
  }

  report(live: (image: string) => NodeImageStatus): Promise<void> {
    return this.#report.write(this.#prepulls.items, new Set(this.prepullKeys()), live);
  }

  fleet(listed: readonly string[], live: (image: string) => NodeImageStatus): FleetView {
    return fleetView({
      node: this.#o.nodeName,
      prepulls: this.#prepulls.items,
      matching: new Set(this.prepullKeys()),
      listed,
      live,
    });
  }
}
