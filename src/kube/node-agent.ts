/**
 * The node agent of Kubernetes mode, composed: watches its node, the image-list ConfigMaps and
 * the PrePulls; merges them into the agent's list file (node-lists.ts); wraps the runtime
 * target (node-target.ts: pull secrets, headroom); and after every change asks the runtime
 * what it holds (node-presence.ts), reports it in the PrePulls' statuses
 * (node-prepull-report.ts) and reconciles the startup taint.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, type V1ConfigMap, type V1Node } from "@kubernetes/client-node";
import type { Credential } from "../config/index.ts";
import { FerryError, type Metrics } from "../observe/index.ts";
import type { Reference } from "../reference/index.ts";
import type { Target } from "../runtime/index.ts";
import { apiConnectError, apiMessage } from "./api-errors.ts";
import type { KubeClient } from "./client.ts";
import { EventRecorder, type InvolvedObject } from "./events.ts";
import type { FleetView } from "./fleet.ts";
import { KubeMetrics } from "./metrics.ts";
import { IMAGE_LIST_LABEL } from "./names.ts";
import type { NodeCondition, NodeConditions } from "./node-conditions.ts";
import { checkHeadroom, type NodeHeadroomOptions } from "./node-headroom.ts";
import { NodeLists } from "./node-lists.ts";
import { NodePresence } from "./node-presence.ts";
import { wrapTarget } from "./node-target.ts";
import { StartupTaint, type TaintMode } from "./startup-taint.ts";
import { type Assignments, assignments, type ReportMode } from "./node-assignments.ts";
import { CollectionWatch } from "./watcher.ts";

export type { TaintMode } from "./startup-taint.ts";

export interface KubeAgentOptions {
  readonly client: KubeClient;
  /** NODE_NAME (downward API: spec.nodeName) */
  readonly nodeName: string;
  /** Where the image-list ConfigMaps are (the agent's own namespace). */
  readonly namespace: string;
  /** The agent's file list, merged in (optional). */
  readonly baseListFile?: string | undefined;
  /** Directory for the merged list the agent watches. */
  readonly stateDir: string;
  /** The startup taint's key; undefined turns taint handling off. */
  readonly startupTaintKey?: string | undefined;
  /** bootstrap (default): removed once, never re-added; continuous: re-added when a required image goes. */
  readonly taintMode?: TaintMode;
  /** The image filesystem to check before each pull (containerd's root); no check without it. */
  readonly imageFsPath?: string | undefined;
  /** Check the filesystem the runtime reports (CRI ImageFsInfo) instead, when it is visible here. */
  readonly imageFsFromRuntime?: boolean;
  /** kubelet's imageGCHighThresholdPercent (default 85). */
  readonly imageGCHighThresholdPercent?: number;
  /** Bytes an image will add, when known (e.g. the sum of its layers); 0 otherwise. */
  readonly estimateBytes?: (
    ref: Reference,
    credential: Credential | undefined,
  ) => Promise<number | undefined>;
  /**
   * Where the agent learns what to hold and reports: its own NodeImages ("nodeimages", written
   * by the elected controller) or every PrePull ("prepull", the previous version's way).
   */
  readonly report?: ReportMode;
  /** Re-check of the runtime without a change (continuous mode, missed pulls); default 30 s. */
  readonly resyncMs?: number;
  readonly metrics: Metrics;
  readonly log: (entry: Record<string, unknown>) => void;
}

export interface KubeAgentStatus {
  readonly node: string;
  readonly apiServer: string;
  readonly startupTaint: {
    key: string;
    mode: TaintMode;
    present: boolean | undefined;
    removedAt?: string;
    /** image-list sources that cannot be read: the taint stays while there is any */
    heldBy?: string[];
  } | null;
  readonly prepulls: string[];
  readonly configMaps: string[];
  readonly requiredPresent: number;
  readonly requiredTotal: number;
  readonly conditions: NodeCondition[];
}

export interface KubeAgent {
  /** The merged list: hand it to the agent as its list file. */
  readonly listFile: string;
  /** Wrap the runtime target (CRI): pull secrets, headroom, pull outcomes for the status. */
  wrapTarget(target: Target): Target;
  status(): KubeAgentStatus;
  /** Images × nodes from the PrePulls' statuses, this node's column live (read-only). */
  fleet(): FleetView;
  stop(): Promise<void>;
}

const DEFAULT_RESYNC_MS = 30_000;

export async function startKubeAgent(options: KubeAgentOptions): Promise<KubeAgent> {
  const agent = new NodeAgent(options);
  try {
    await agent.start();
  } catch (error) {
    await agent.stop();
    throw error;
  }
  return agent;
}

class NodeAgent implements KubeAgent {
  readonly listFile: string;
  readonly #o: KubeAgentOptions;
  readonly #core: CoreV1Api;
  readonly #events: EventRecorder;
  readonly #metrics: KubeMetrics;
  readonly #nodes: CollectionWatch<V1Node>;
  readonly #configMaps: CollectionWatch<V1ConfigMap>;
  readonly #assignments: Assignments;
  readonly #lists: NodeLists;
  readonly #presence: NodePresence;
  readonly #headroom: NodeHeadroomOptions;
  #runtime: Target | undefined;
  readonly #taint: StartupTaint | undefined;
  readonly #conditions: NodeConditions = new Map();
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  /** Until every source has been listed once, no partial list is written. */
  #started = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #warned = new Set<string>();

  constructor(options: KubeAgentOptions) {
    if (options.nodeName.trim() === "")
      throw new FerryError("FERRY_INVALID_ARGUMENT", "Kubernetes mode needs the node's name", {
        hint: "set NODE_NAME from the downward API (env valueFrom fieldRef spec.nodeName)",
      });
    this.#o = options;
    this.listFile = join(options.stateDir, "kubernetes-images.yaml");
    const config = options.client.config;
    this.#core = config.makeApiClient(CoreV1Api);
    this.#events = new EventRecorder(this.#core, {
      namespace: options.namespace,
      host: options.nodeName,
      onError: (error) =>
        options.log({ level: "warn", msg: "event not recorded", error: apiMessage(error) }),
    });
    this.#metrics = new KubeMetrics(options.metrics);
    this.#taint =
      options.startupTaintKey === undefined
        ? undefined
        : new StartupTaint({
            core: this.#core,
            config,
            nodeName: options.nodeName,
            key: options.startupTaintKey,
            mode: options.taintMode ?? "bootstrap",
            metrics: this.#metrics,
            events: this.#events,
            log: options.log,
          });
    const warnOnce = (key: string, entry: Record<string, unknown>) => this.#warnOnce(key, entry);
    this.#lists = new NodeLists({
      listFile: this.listFile,
      baseListFile: options.baseListFile,
      conditions: this.#conditions,
      warnOnce,
      log: options.log,
    });
    this.#presence = new NodePresence({
      nodeName: options.nodeName,
      taintKey: options.startupTaintKey,
      taint: this.#taint,
      metrics: this.#metrics,
      warnOnce,
    });
    this.#headroom = {
      nodeName: options.nodeName,
      imageFsPath: options.imageFsPath,
      imageGCHighThresholdPercent: options.imageGCHighThresholdPercent,
      estimateBytes: options.estimateBytes,
      conditions: this.#conditions,
      metrics: this.#metrics,
      events: this.#events,
      nodeRef: () => this.#nodeRef(),
      warnOnce,
    };
    const onError = (what: string) => (error: unknown) =>
      options.log({ level: "warn", msg: `watch of ${what} restarting`, error: apiMessage(error) });
    this.#nodes = new CollectionWatch<V1Node>({
      config,
      path: "/api/v1/nodes",
      fieldSelector: `metadata.name=${options.nodeName}`,
      list: () => this.#core.listNode({ fieldSelector: `metadata.name=${options.nodeName}` }),
      onChange: () => this.#changed(),
      onError: onError("the node"),
    });
    this.#configMaps = new CollectionWatch<V1ConfigMap>({
      config,
      path: `/api/v1/namespaces/${options.namespace}/configmaps`,
      labelSelector: `${IMAGE_LIST_LABEL}=true`,
      list: () =>
        this.#core.listNamespacedConfigMap({
          namespace: options.namespace,
          labelSelector: `${IMAGE_LIST_LABEL}=true`,
        }),
      onChange: () => this.#changed(),
      onError: onError("image-list ConfigMaps"),
    });
    this.#assignments = assignments(options.report ?? "prepull", {
      config,
      core: this.#core,
      nodeName: options.nodeName,
      node: () => this.#node(),
      events: this.#events,
      onChange: () => this.#changed(),
      onError,
      log: options.log,
    });
  }

  async start(): Promise<void> {
    await mkdir(this.#o.stateDir, { recursive: true });
    await this.#lists.loadBase();
    // The first calls prove the kubeconfig: their failure says what is wrong with it.
    await Promise.all([
      this.#nodes.start(),
      this.#configMaps.start(),
      this.#assignments.start(),
    ]).catch((error: unknown) => {
      const client = this.#o.client;
      throw apiConnectError(error, client.config.getCurrentCluster()?.server ?? client.source);
    });
    if (this.#nodes.items.length === 0)
      this.#o.log({
        level: "warn",
        msg: "this node is not (yet) in the API",
        node: this.#o.nodeName,
      });
    this.#started = true;
    await this.#render();
    this.#lists.watchBase(() => this.#changed());
    const resync = this.#o.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#timer = setInterval(() => {
      this.#presence.checkAll();
      this.#kick();
    }, resync);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#nodes.stop();
    this.#configMaps.stop();
    this.#assignments.stop();
    await this.#lists.stop();
    await this.#running;
  }

  status(): KubeAgentStatus {
    const key = this.#o.startupTaintKey;
    return {
      node: this.#o.nodeName,
      apiServer: this.#o.client.source,
      startupTaint:
        key === undefined
          ? null
          : {
              key,
              mode: this.#o.taintMode ?? "bootstrap",
              present: this.#taint?.present,
              ...(this.#taint?.removedAt === undefined ? {} : { removedAt: this.#taint.removedAt }),
              ...(this.#taint === undefined || this.#taint.heldBy.length === 0
                ? {}
                : { heldBy: [...this.#taint.heldBy] }),
            },
      prepulls: this.#assignments.prepullKeys(),
      configMaps: this.#configMaps.items.map((c) => `${c.metadata?.namespace}/${c.metadata?.name}`),
      requiredPresent: this.#presence.requiredPresent,
      requiredTotal: this.#presence.requiredTotal,
      conditions: [...this.#conditions.values()],
    };
  }

  fleet(): FleetView {
    return this.#assignments.fleet([...this.#lists.wanted.keys()], (image) =>
      this.#presence.imageStatus(image),
    );
  }

  wrapTarget(target: Target): Target {
    if (target.kind === "store") return target;
    this.#runtime = target;
    this.#kick();
    return wrapTarget(target, {
      credential: (image, ref) =>
        this.#assignments.credential(image, ref, this.#lists.wanted.get(image)?.prepulls),
      check: (image, ref, credential) =>
        checkHeadroom(
          {
            ...this.#headroom,
            ...(this.#o.imageFsFromRuntime === true && target.imageFilesystems !== undefined
              ? { runtimeImageFs: async () => (await target.imageFilesystems!())[0]?.mountpoint }
              : {}),
          },
          image,
          ref,
          credential,
        ),
      pulling: (image) => {
        this.#presence.pulling(image);
        this.#kick();
      },
      pulled: (image) => {
        this.#presence.pulled(image);
        this.#kick();
      },
      failed: (image, error) => {
        this.#presence.failed(image, error);
        this.#kick();
      },
    });
  }

  #node(): V1Node | undefined {
    return this.#nodes.items[0];
  }

  #render(): Promise<void> {
    return this.#lists.render(() => ({
      configMaps: this.#configMaps.items,
      ...this.#assignments.sources(),
    }));
  }

  #changed(): void {
    if (this.#stopped || !this.#started) return;
    this.#render()
      .catch((error: unknown) =>
        this.#o.log({ level: "error", msg: "image list not written", error: String(error) }),
      )
      .finally(() => this.#kick());
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          await this.#reconcile();
        } catch (error) {
          this.#o.log({
            level: "warn",
            msg: "kubernetes reconcile failed; retrying on the next change",
            error: apiMessage(error),
          });
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => {
      this.#running = undefined;
    });
  }

  async #reconcile(): Promise<void> {
    const runtime = this.#runtime;
    const node = this.#node();
    if (runtime === undefined || node === undefined) return;
    const wanted = this.#lists.wanted;
    await this.#presence.refresh(runtime, node, wanted);
    await this.#assignments.report((image) => this.#presence.imageStatus(image));
    const problem = this.#assignments.problem();
    const unreadable = this.#lists.unreadableReasons();
    await this.#presence.reconcileTaint(
      runtime,
      node,
      wanted,
      problem === undefined ? unreadable : [...unreadable, problem],
    );
  }

  #nodeRef(): InvolvedObject {
    return {
      apiVersion: "v1",
      kind: "Node",
      name: this.#o.nodeName,
      uid: this.#node()?.metadata?.uid,
    };
  }

  #warnOnce(key: string, entry: Record<string, unknown>): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#o.log({ level: "warn", ...entry });
  }
}
