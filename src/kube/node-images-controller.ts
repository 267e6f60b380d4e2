/**
 * The elected controller's per-node half: from the Nodes and the PrePulls it writes each node's
 * NodeImages spec (what the node should hold), and from the NodeImages statuses each PrePull's
 * aggregate status (ready N/M, the first failures). Passes are batched and rate-limited (at
 * most one per `intervalMs`, writing only what changed), so a burst of node reports costs each
 * PrePull one status write. The controller is the only writer of NodeImages specs and of the
 * aggregate fields, so its merge patches carry no resourceVersion and meet no conflict.
 */
import {
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import type { Metrics } from "../observe/index.ts";
import { apiStatus } from "./api-errors.ts";
import { NodeImagesMetrics } from "./metrics.ts";
import type { EventRecorder } from "./events.ts";
import { matchingPrePulls } from "./image-sources.ts";
import {
  NODE_IMAGES_KIND,
  NODE_IMAGES_PLURAL,
  PREPULL_GROUP,
  PREPULL_KIND,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  WORKLOAD_PREPULL_LABEL,
} from "./names.ts";
import {
  aggregate,
  type NodeImagesObject,
  nodeImagesSpec,
  type PrePullAggregate,
} from "./node-images.ts";
import { type NodeStatus, type PrePull, prepullKey } from "./prepull.ts";
import { type PrePullObject, readGrants } from "./workload/prepull.ts";
import type { ClusterNodes } from "./cluster-nodes.ts";
import { CollectionWatch } from "./watcher.ts";

export const DEFAULT_NODE_IMAGES_INTERVAL_MS = 1000;
/** NodeImages written at once in a pass (a new cluster: one per node). */
const WRITE_CONCURRENCY = 16;

export interface NodeImagesControllerOptions {
  readonly kubeConfig: KubeConfig;
  /** Every Node, shared with the rollout controller; its owner starts and stops it. */
  readonly nodes: ClusterNodes;
  /** At most one pass (and its writes) per this long; default 1 s. */
  readonly intervalMs?: number;
  readonly recorder?: EventRecorder;
  /** The agent's registry: writes and each PrePull's ready/selected nodes. */
  readonly metrics?: Metrics;
  readonly onError: (where: string, error: unknown) => void;
}

const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export class NodeImagesController {
  readonly #o: NodeImagesControllerOptions;
  readonly #custom: CustomObjectsApi;
  readonly #nodes: ClusterNodes;
  readonly #unsubscribe: () => void;
  readonly #prepulls: CollectionWatch<PrePull>;
  readonly #own: CollectionWatch<NodeImagesObject>;
  #synced = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> = Promise.resolve();
  #last = 0;
  /** PrePulls whose every selected node held every image at the last pass (for the Event). */
  readonly #complete = new Set<string>();
  readonly #metrics: NodeImagesMetrics | undefined;

  constructor(options: NodeImagesControllerOptions) {
    this.#o = options;
    this.#metrics =
      options.metrics === undefined ? undefined : new NodeImagesMetrics(options.metrics);
    const kc = options.kubeConfig;
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    const onError = (where: string) => (error: unknown) => options.onError(where, error);
    const kick = () => this.#kick();
    this.#nodes = options.nodes;
    this.#unsubscribe = options.nodes.onChange(kick);
    // Every PrePull: the rollout ones' grants are written into the granted nodes' NodeImages too.
    this.#prepulls = new CollectionWatch<PrePull>({
      config: kc,
      path: `/apis/${PREPULL_GROUP}/${PREPULL_VERSION}/${PREPULL_PLURAL}`,
      list: async () =>
        (await this.#custom.listCustomObjectForAllNamespaces({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          resourcePlural: PREPULL_PLURAL,
        })) as { items: PrePull[] },
      onChange: kick,
      onError: onError("watch prepulls"),
      retryFirstList: true,
    });
    this.#own = new CollectionWatch<NodeImagesObject>({
      config: kc,
      path: `/apis/${PREPULL_GROUP}/${PREPULL_VERSION}/${NODE_IMAGES_PLURAL}`,
      list: async () =>
        (await this.#custom.listClusterCustomObject({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          plural: NODE_IMAGES_PLURAL,
        })) as { items: NodeImagesObject[] },
      onChange: kick,
      onError: onError("watch nodeimages"),
      retryFirstList: true,
    });
  }

  async start(): Promise<void> {
    await Promise.all([this.#nodes.start(), this.#prepulls.start(), this.#own.start()]);
    if (this.#stopped) return;
    this.#synced = true;
    this.#kick();
  }

  /** What the node's agent last reported in its NodeImages status. */
  nodeReport(node: string): NodeStatus | undefined {
    return this.#own.get(undefined, node)?.status;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unsubscribe();
    this.#prepulls.stop();
    this.#own.stop();
    await this.#pass;
  }

  /** One pass soon: at once after a quiet spell, else when `intervalMs` has passed since the last. */
  #kick(): void {
    if (!this.#synced || this.#stopped || this.#timer !== undefined) return;
    const interval = this.#o.intervalMs ?? DEFAULT_NODE_IMAGES_INTERVAL_MS;
    const wait = Math.max(0, this.#last + interval - Date.now());
    this.#timer = setTimeout(() => {
      this.#pass = this.#pass.then(async () => {
        this.#timer = undefined;
        if (this.#stopped) return;
        this.#last = Date.now();
        try {
          await this.#reconcile();
        } catch (error) {
          this.#o.onError("nodeimages pass", error);
        }
      });
    }, wait);
  }

  async #reconcile(): Promise<void> {
    const prepulls = this.#prepulls.items;
    const nodes = this.#nodes.items;
    const names = new Set(nodes.map((n) => n.metadata?.name ?? ""));
    const grants = new Map(prepulls.filter(isRollout).map((p) => [p, rolloutGrants(p)]));
    const changed = nodes.flatMap((node) => {
      const name = node.metadata?.name;
      if (!name) return [];
      const granted = [...grants].filter(([, g]) => g.has(name)).map(([p]) => p);
      const spec = nodeImagesSpec(prepulls, node.metadata?.labels ?? {}, granted);
      const current = this.#own.get(undefined, name);
      if (current !== undefined && JSON.stringify(current.spec) === JSON.stringify(spec)) return [];
      return [{ name, spec, create: current === undefined }];
    });
    // Each node's object is its own: writing several at once races with nobody.
    await forEachLimited(changed, WRITE_CONCURRENCY, ({ name, spec, create }) =>
      this.#writeSpec(name, spec, create).catch((error: unknown) =>
        this.#o.onError(`nodeimages ${name}`, error),
      ),
    );
    const gone = this.#own.items
      .map((own) => own.metadata?.name ?? "")
      .filter((name) => !names.has(name));
    await forEachLimited(gone, WRITE_CONCURRENCY, (name) =>
      this.#custom
        .deleteClusterCustomObject({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          plural: NODE_IMAGES_PLURAL,
          name,
        })
        .then(
          () => this.#metrics?.wrote("delete"),
          (error: unknown) => {
            if (apiStatus(error) !== 404) this.#o.onError(`delete nodeimages ${name}`, error);
          },
        ),
    );
    for (const p of prepulls) {
      // A rollout PrePull's nodes are those granted so far; another's, those it selects.
      const selected = isRollout(p)
        ? [...(grants.get(p)?.keys() ?? [])].filter((n) => names.has(n))
        : nodes
            .filter((n) => matchingPrePulls([p], n.metadata?.labels ?? {}).length > 0)
            .map((n) => n.metadata?.name ?? "")
            .filter((n) => n !== "");
      const agg = aggregate(p, selected, (node) => this.#own.get(undefined, node)?.status);
      this.#metrics?.prepull(prepullKey(p), Number(agg.ready.split("/")[0]), agg.selected);
      if (sameAggregate(p, agg)) continue;
      await this.#writeAggregate(p, agg).catch((error: unknown) =>
        this.#o.onError(`prepull status ${prepullKey(p)}`, error),
      );
    }
  }

  async #writeSpec(name: string, spec: NodeImagesObject["spec"], create: boolean): Promise<void> {
    const where = { group: PREPULL_GROUP, version: PREPULL_VERSION, plural: NODE_IMAGES_PLURAL };
    if (create) {
      try {
        await this.#custom.createClusterCustomObject({
          ...where,
          body: {
            apiVersion: `${PREPULL_GROUP}/${PREPULL_VERSION}`,
            kind: NODE_IMAGES_KIND,
            metadata: { name, labels: { "app.kubernetes.io/managed-by": "ferry" } },
            spec,
          },
        });
        this.#metrics?.wrote("spec");
        return;
      } catch (error) {
        // The watch had not shown it yet: patch it as any other.
        if (apiStatus(error) !== 409) throw error;
      }
    }
    // The spec is replaced whole: a merge patch of `images` replaces the list.
    await this.#custom.patchClusterCustomObject({ ...where, name, body: { spec } }, MERGE);
    this.#metrics?.wrote("spec");
  }

  async #writeAggregate(p: PrePull, agg: PrePullAggregate): Promise<void> {
    await this.#custom.patchNamespacedCustomObjectStatus(
      {
        group: PREPULL_GROUP,
        version: PREPULL_VERSION,
        plural: PREPULL_PLURAL,
        namespace: p.metadata?.namespace ?? "",
        name: p.metadata?.name ?? "",
        body: {
          status: {
            ready: agg.ready,
            selected: agg.selected,
            failedNodes: agg.failedNodes,
            failed: agg.failed,
          },
        },
      },
      MERGE,
    );
    this.#metrics?.wrote("aggregate");
    const key = prepullKey(p);
    const [ready, reporting] = agg.ready.split("/");
    const complete = agg.selected > 0 && ready === String(agg.selected) && reporting === ready;
    if (complete && !this.#complete.has(key))
      this.#o.recorder?.record({
        involved: {
          apiVersion: `${PREPULL_GROUP}/${PREPULL_VERSION}`,
          kind: PREPULL_KIND,
          name: p.metadata?.name ?? "",
          namespace: p.metadata?.namespace,
          uid: p.metadata?.uid,
        },
        reason: "ImagesPresent",
        message: `all ${agg.selected} selected nodes hold every image`,
      });
    if (complete) this.#complete.add(key);
    else this.#complete.delete(key);
  }
}

function isRollout(p: PrePull): boolean {
  return p.metadata?.labels?.[WORKLOAD_PREPULL_LABEL] !== undefined;
}

function rolloutGrants(p: PrePull): Map<string, number> {
  return readGrants(p as PrePullObject);
}

function sameAggregate(p: PrePull, agg: PrePullAggregate): boolean {
  const s = p.status as (PrePull["status"] & Partial<PrePullAggregate>) | undefined;
  return (
    s?.ready === agg.ready &&
    s.selected === agg.selected &&
    s.failedNodes === agg.failedNodes &&
    JSON.stringify(s.failed ?? []) === JSON.stringify(agg.failed)
  );
}

/** `fn` over the items, at most `limit` at a time. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
