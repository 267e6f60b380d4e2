import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  CoreV1Api,
  CustomObjectsApi,
  type V1ConfigMap,
  type V1Node,
} from "@kubernetes/client-node";
import { type ImageEntry, loadImageList, watchList } from "../agent/index.ts";
import type { Credential } from "../config/index.ts";
import { canonicalHost } from "../config/index.ts";
import { FerryError, isFerryError, type Metrics } from "../observe/index.ts";
import { formatReference, parseReference, type Reference } from "../reference/index.ts";
import type { ImagePresence, Target, TargetPullOptions } from "../runtime/index.ts";
import { apiConnectError, apiMessage } from "./api-errors.ts";
import type { KubeClient } from "./client.ts";
import { EventRecorder, type InvolvedObject } from "./events.ts";
import { decideHeadroom, filesystemUsage, headroomError } from "./headroom.ts";
import { KubeMetrics } from "./metrics.ts";
import {
  DEFAULT_IMAGE_GC_HIGH_PERCENT,
  IMAGE_LIST_LABEL,
  PREPULL_GROUP,
  PREPULL_KIND,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  WORKLOAD_PREPULL_LABEL,
} from "./names.ts";
import {
  type NodeImageStatus,
  type NodeStatus,
  nodeStatus,
  type PrePull,
  prepullKey,
  sameNodeStatus,
} from "./prepull.ts";
import {
  collectImages,
  listText,
  matchingPrePulls,
  type WantedImage,
  writeAtomic,
} from "./image-sources.ts";
import { type FleetView, fleetView } from "./fleet.ts";
import { writeNodeStatus } from "./prepull-status.ts";
import { credentialsFromSecret } from "./pull-secrets.ts";
import { StartupTaint, type TaintMode } from "./startup-taint.ts";
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
  /** kubelet's imageGCHighThresholdPercent (default 85). */
  readonly imageGCHighThresholdPercent?: number;
  /** Bytes an image will add, when known (e.g. the sum of its layers); 0 otherwise. */
  readonly estimateBytes?: (
    ref: Reference,
    credential: Credential | undefined,
  ) => Promise<number | undefined>;
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
  readonly conditions: {
    type: string;
    status: "True" | "False";
    reason: string;
    message: string;
  }[];
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
  readonly #custom: CustomObjectsApi;
  readonly #events: EventRecorder;
  readonly #metrics: KubeMetrics;
  readonly #nodes: CollectionWatch<V1Node>;
  readonly #configMaps: CollectionWatch<V1ConfigMap>;
  readonly #prepulls: CollectionWatch<PrePull>;
  #baseEntries: readonly ImageEntry[] = [];
  #baseError: string | undefined;
  #baseWatch: { stop(): void } | undefined;
  #runtime: Target | undefined;
  #wanted = new Map<string, WantedImage>();
  /** Sources that might name required images and cannot be read (source: why); fail closed. */
  #unreadable = new Map<string, string>();
  #listText = "";
  readonly #pulling = new Set<string>();
  readonly #failures = new Map<string, string>();
  readonly #present = new Map<string, ImagePresence>();
  #requiredPresent = 0;
  #requiredTotal = 0;
  readonly #taint: StartupTaint | undefined;
  readonly #conditions = new Map<string, KubeAgentStatus["conditions"][number]>();
  #running: Promise<void> | undefined;
  #rendering: Promise<void> = Promise.resolve();
  #again = false;
  #stopped = false;
  /** Until every source has been listed once, no partial list is written. */
  #started = false;
  /** Ask the runtime about every image, not only those not known present (resync). */
  #fullCheck = true;
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
    this.#custom = config.makeApiClient(CustomObjectsApi);
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
    // Rollout PrePulls (labelled by the workload controller) are pulled by its node runner.
    const prepullSelector = `!${WORKLOAD_PREPULL_LABEL}`;
    this.#prepulls = new CollectionWatch<PrePull>({
      config,
      path: `/apis/${PREPULL_GROUP}/${PREPULL_VERSION}/${PREPULL_PLURAL}`,
      labelSelector: prepullSelector,
      list: async () =>
        (await this.#custom.listCustomObjectForAllNamespaces({
          group: PREPULL_GROUP,
          version: PREPULL_VERSION,
          resourcePlural: PREPULL_PLURAL,
          labelSelector: prepullSelector,
        })) as { items: PrePull[]; metadata?: { resourceVersion?: string } },
      onChange: () => this.#changed(),
      onError: onError("PrePulls"),
    });
  }

  async start(): Promise<void> {
    await mkdir(this.#o.stateDir, { recursive: true });
    await this.#loadBase();
    // The first calls prove the kubeconfig: their failure says what is wrong with it.
    await Promise.all([
      this.#nodes.start(),
      this.#configMaps.start(),
      this.#prepulls.start(),
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
    if (this.#o.baseListFile !== undefined) {
      this.#baseWatch = watchList(this.#o.baseListFile, undefined, () => {
        void this.#loadBase().then(() => this.#changed());
      });
    }
    const resync = this.#o.resyncMs ?? DEFAULT_RESYNC_MS;
    this.#timer = setInterval(() => {
      this.#fullCheck = true;
      this.#kick();
    }, resync);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#baseWatch?.stop();
    this.#nodes.stop();
    this.#configMaps.stop();
    this.#prepulls.stop();
    await this.#running;
    await this.#rendering;
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
      prepulls: this.#matchingPrePulls().map(prepullKey),
      configMaps: this.#configMaps.items.map((c) => `${c.metadata?.namespace}/${c.metadata?.name}`),
      requiredPresent: this.#requiredPresent,
      requiredTotal: this.#requiredTotal,
      conditions: [...this.#conditions.values()],
    };
  }

  fleet(): FleetView {
    return fleetView({
      node: this.#o.nodeName,
      prepulls: this.#prepulls.items,
      matching: new Set(this.#matchingPrePulls().map(prepullKey)),
      listed: [...this.#wanted.keys()],
      live: (image) => this.#imageStatus(image),
    });
  }

  wrapTarget(target: Target): Target {
    if (target.kind === "store") return target;
    this.#runtime = target;
    this.#kick();
    const pull = async (
      ref: Reference,
      pullOptions: TargetPullOptions = {},
    ): Promise<ImagePresence> => {
      const image = formatReference(ref);
      this.#pulling.add(image);
      this.#kick();
      try {
        const credential = (await this.#secretCredential(image, ref)) ?? pullOptions.credential;
        await this.#checkHeadroom(image, ref, credential);
        const presence = await target.pull(ref, {
          ...pullOptions,
          ...(credential === undefined ? {} : { credential }),
        });
        this.#failures.delete(image);
        return presence;
      } catch (error) {
        this.#failures.set(image, reasonOf(error));
        throw error;
      } finally {
        this.#pulling.delete(image);
        this.#kick();
      }
    };
    const wrapped: Target = {
      kind: target.kind,
      name: target.name,
      ping: (signal) => target.ping(signal),
      status: (ref, signal, platform) => target.status(ref, signal, platform),
      pull,
      close: () => target.close(),
    };
    if (target.pin !== undefined) wrapped.pin = (ref, signal) => target.pin!(ref, signal);
    if (target.unpin !== undefined) wrapped.unpin = (ref, signal) => target.unpin!(ref, signal);
    return wrapped;
  }

  // ---- lists

  async #loadBase(): Promise<void> {
    if (this.#o.baseListFile === undefined) return;
    try {
      this.#baseEntries = (await loadImageList(this.#o.baseListFile)).images;
      this.#baseError = undefined;
    } catch (error) {
      this.#baseError = error instanceof Error ? error.message : String(error);
      this.#o.log({
        level: "warn",
        msg: "image list not read: keeping the previous one",
        error: this.#baseError,
      });
    }
  }

  #node(): V1Node | undefined {
    return this.#nodes.items[0];
  }

  #matchingPrePulls(): PrePull[] {
    return matchingPrePulls(this.#prepulls.items, this.#node()?.metadata?.labels ?? {});
  }

  /** Writes the merged list (atomically) when it changed; the agent's list watch picks it up. */
  #render(): Promise<void> {
    const next = this.#rendering.then(() => this.#renderNow());
    this.#rendering = next.catch(() => {});
    return next;
  }

  async #renderNow(): Promise<void> {
    const unreadable = new Map<string, string>();
    if (this.#baseError !== undefined)
      unreadable.set(`file ${this.#o.baseListFile}`, `list file not read: ${this.#baseError}`);
    this.#wanted = collectImages({
      base: this.#baseEntries,
      configMaps: this.#configMaps.items,
      prepulls: this.#matchingPrePulls(),
      problem: (key, entry, blocking) => {
        this.#warnOnce(key, entry);
        if (!blocking) return;
        const source = String(entry["configMap"] ?? entry["prepull"] ?? key);
        const error = entry["error"] === undefined ? "" : `: ${String(entry["error"])}`;
        unreadable.set(source, `${entry.msg}${error}`);
      },
    });
    this.#unreadable = unreadable;
    this.#setUnreadableCondition();
    const text = listText(this.#wanted, this.#o.baseListFile ?? "no file");
    if (text === this.#listText) return;
    await writeAtomic(this.listFile, text);
    this.#listText = text;
    const all = [...this.#wanted.values()];
    this.#o.log({
      level: "info",
      msg: "kubernetes image list written",
      images: all.length,
      required: all.filter((w) => w.entry.required).length,
    });
  }

  #setUnreadableCondition(): void {
    if (this.#unreadable.size === 0) {
      this.#conditions.delete("ImageListsReadable");
      return;
    }
    this.#conditions.set("ImageListsReadable", {
      type: "ImageListsReadable",
      status: "False",
      reason: "ImageListUnreadable",
      message: this.#unreadableReasons().join("; "),
    });
  }

  #unreadableReasons(): string[] {
    return [...this.#unreadable].map(([source, why]) => `${source}: ${why}`);
  }

  #changed(): void {
    if (this.#stopped || !this.#started) return;
    this.#render()
      .catch((error: unknown) =>
        this.#o.log({ level: "error", msg: "image list not written", error: String(error) }),
      )
      .finally(() => this.#kick());
  }

  // ---- pulls

  async #secretCredential(image: string, ref: Reference): Promise<Credential | undefined> {
    const prepulls = this.#wanted.get(image)?.prepulls;
    if (prepulls === undefined || prepulls.size === 0) return undefined;
    const host = canonicalHost(ref.domain);
    for (const p of this.#matchingPrePulls()) {
      if (!prepulls.has(prepullKey(p))) continue;
      for (const { name } of p.spec?.imagePullSecrets ?? []) {
        if (!name) continue;
        try {
          const secret = await this.#core.readNamespacedSecret({
            name,
            namespace: p.metadata?.namespace ?? "",
          });
          const credential = credentialsFromSecret(secret).get(host);
          if (credential !== undefined) return credential;
        } catch (error) {
          this.#o.log({
            level: "warn",
            msg: "pull secret not read",
            secret: `${p.metadata?.namespace}/${name}`,
            error: apiMessage(error),
          });
        }
      }
    }
    return undefined;
  }

  async #checkHeadroom(
    image: string,
    ref: Reference,
    credential: Credential | undefined,
  ): Promise<void> {
    const path = this.#o.imageFsPath;
    if (path === undefined) return;
    let usage: Awaited<ReturnType<typeof filesystemUsage>>;
    try {
      usage = await filesystemUsage(path);
    } catch (error) {
      this.#warnOnce(`statfs:${path}`, {
        msg: "image filesystem not measured: headroom not checked",
        path,
        error: String(error),
      });
      return;
    }
    const incoming = (await this.#o.estimateBytes?.(ref, credential).catch(() => undefined)) ?? 0;
    const threshold = this.#o.imageGCHighThresholdPercent ?? DEFAULT_IMAGE_GC_HIGH_PERCENT;
    const decision = decideHeadroom(usage, incoming, threshold);
    if (decision.ok) {
      this.#conditions.delete("ImageFilesystemHeadroom");
      return;
    }
    const error = headroomError(image, path, decision);
    this.#conditions.set("ImageFilesystemHeadroom", {
      type: "ImageFilesystemHeadroom",
      status: "False",
      reason: "HeadroomExceeded",
      message: error.message,
    });
    this.#metrics.headroomRefused(this.#o.nodeName);
    this.#events.record({
      involved: this.#nodeRef(),
      reason: "HeadroomExceeded",
      message: error.message,
      warning: true,
    });
    throw error;
  }

  // ---- reconcile

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
    // What the runtime holds, asked image by image (node.status.images is capped at 50). After
    // a pull only the images not known present are asked; the resync and a tainted node (the
    // taint is removed only on a fresh answer for every required image) ask about all.
    const key = this.#o.startupTaintKey;
    const full = this.#fullCheck || (node.spec?.taints?.some((t) => t.key === key) ?? false);
    this.#fullCheck = false;
    for (const image of this.#wanted.keys()) {
      if (!full && this.#present.has(image)) continue;
      try {
        const { entry } = this.#wanted.get(image)!;
        const presence = await runtime.status(entry.ref, undefined, entry.platform);
        if (presence.present) this.#present.set(image, presence);
        else this.#present.delete(image);
      } catch (error) {
        this.#present.delete(image);
        this.#warnOnce(`status:${image}`, {
          msg: "runtime did not say whether it holds the image",
          image,
          error: String(error),
        });
      }
    }
    for (const image of [...this.#present.keys()])
      if (!this.#wanted.has(image)) this.#present.delete(image);
    const required = [...this.#wanted.entries()]
      .filter(([, w]) => w.entry.required)
      .map(([image]) => image);
    this.#requiredTotal = required.length;
    this.#requiredPresent = required.filter((i) => this.#present.has(i)).length;
    const present = [...this.#wanted.keys()].filter((i) => this.#present.has(i)).length;
    this.#metrics.images(this.#o.nodeName, present, this.#wanted.size - present);
    await this.#writePrePullStatuses();
    const missing = required.filter((i) => !this.#present.has(i));
    // Pinned before the node opens: kubelet's GC must not take what the taint waited for.
    const unreadable = this.#unreadableReasons();
    await this.#taint?.reconcile(node, required.length, missing, unreadable, async () => {
      for (const image of required) {
        const ref = this.#wanted.get(image)?.entry.ref;
        if (ref === undefined || runtime.pin === undefined) continue;
        await runtime.pin(ref).catch((error: unknown) =>
          this.#warnOnce(`pin:${image}`, {
            msg: "required image not pinned",
            image,
            error: String(error),
          }),
        );
      }
    });
  }

  #imageStatus(text: string): NodeImageStatus {
    let image: string;
    try {
      image = formatReference(parseReference(text));
    } catch (error) {
      return { image: text, state: "failed", reason: `InvalidReference: ${String(error)}` };
    }
    const presence = this.#present.get(image);
    if (presence !== undefined) {
      const digest = presence.repoDigests?.[0]?.split("@")[1] ?? presence.id;
      return { image: text, state: "present", ...(digest === undefined ? {} : { digest }) };
    }
    if (this.#pulling.has(image)) return { image: text, state: "pulling" };
    const failure = this.#failures.get(image);
    if (failure !== undefined) return { image: text, state: "failed", reason: failure };
    return { image: text, state: "missing" };
  }

  async #writePrePullStatuses(): Promise<void> {
    const me = this.#o.nodeName;
    const matching = new Set(this.#matchingPrePulls().map(prepullKey));
    for (const p of this.#prepulls.items) {
      const key = prepullKey(p);
      const mine = matching.has(key)
        ? nodeStatus(
            (p.spec?.images ?? []).map((i) => this.#imageStatus(i)),
            new Date(),
          )
        : undefined;
      const current = p.status?.nodes?.[me];
      if (mine === undefined ? current === undefined : sameNodeStatus(current, mine)) continue;
      await this.#writeStatus(p, mine).catch((error: unknown) =>
        this.#o.log({
          level: "warn",
          msg: "PrePull status not written",
          prepull: key,
          error: apiMessage(error),
        }),
      );
      if (mine !== undefined) this.#announce(p, current, mine);
    }
  }

  #writeStatus(p: PrePull, mine: NodeStatus | undefined): Promise<void> {
    return writeNodeStatus(this.#custom, p, this.#o.nodeName, mine);
  }

  #announce(
    p: PrePull,
    before: ReturnType<typeof nodeStatus> | undefined,
    now: ReturnType<typeof nodeStatus>,
  ): void {
    const involved: InvolvedObject = {
      apiVersion: `${PREPULL_GROUP}/${PREPULL_VERSION}`,
      kind: PREPULL_KIND,
      name: p.metadata?.name ?? "",
      namespace: p.metadata?.namespace,
      uid: p.metadata?.uid,
    };
    for (const image of now.images) {
      const was = before?.images.find((i) => i.image === image.image);
      if (image.state === "failed" && (was?.state !== "failed" || was.reason !== image.reason))
        this.#events.record({
          involved,
          reason: "PullFailed",
          message: `${this.#o.nodeName}: ${image.image}: ${image.reason ?? ""}`,
          warning: true,
        });
    }
    if (now.total > 0 && now.present === now.total && !(before && before.present === before.total))
      this.#events.record({
        involved,
        reason: "ImagesPresent",
        message: `${this.#o.nodeName}: all ${now.total} images present`,
      });
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

function reasonOf(error: unknown): string {
  if (isFerryError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
