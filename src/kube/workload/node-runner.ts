/**
 * The per-node half: every agent watches the workload PrePulls and pulls, into its own node's
 * runtime through the CRI, the images of those that grant its node; then reports in
 * status.nodes[its node] what the runtime holds. It never acts for another node.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import type { Credential } from "../../config/index.ts";
import { FerryError } from "../../observe/index.ts";
import { canonicalHost } from "../../config/index.ts";
import { parseReference } from "../../reference/index.ts";
import type { Target } from "../../runtime/index.ts";
import { apiStatus } from "../api-errors.ts";
import { nodeStatus, readyCount } from "../prepull.ts";
import { credentialsFromSecret } from "../pull-secrets.ts";
import type { EventSink } from "./events.ts";
import {
  type NodeImageStatus,
  nodeProgress,
  PREPULL_GROUP,
  PREPULL_PLURAL,
  PREPULL_VERSION,
  type PrePullObject,
  readGrants,
  rolloutPrePullReflector,
} from "./prepull.ts";
import type { CollectionWatch } from "../watcher.ts";

const MAX_CONFLICT_RETRIES = 8;

export interface NodeRunnerOptions {
  readonly kubeConfig: KubeConfig;
  readonly nodeName: string;
  readonly target: Target;
  readonly onEvent: EventSink;
}

export class NodeRunner {
  readonly #options: NodeRunnerOptions;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #reflector: CollectionWatch<PrePullObject>;
  /** Work already done, by `uid|images|grant time`: a new grant (a retry) is new work. */
  readonly #done = new Set<string>();
  #queue: Promise<void> = Promise.resolve();
  #pending = false;
  readonly #abort = new AbortController();

  constructor(options: NodeRunnerOptions) {
    this.#options = options;
    this.#custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#reflector = rolloutPrePullReflector(
      options.kubeConfig,
      this.#custom,
      () => this.#kick(),
      (error) => options.onEvent({ type: "error", where: "watch prepulls", error }),
    );
  }

  start(): Promise<void> {
    return this.#reflector.start();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#reflector.stop();
    await this.#queue;
  }

  #kick(): void {
    if (this.#pending) return;
    this.#pending = true;
    this.#queue = this.#queue.then(async () => {
      this.#pending = false;
      await this.#work();
    });
  }

  async #work(): Promise<void> {
    const me = this.#options.nodeName;
    const prepulls = this.#reflector.items.sort((a, b) =>
      (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? ""),
    );
    // Forget work on PrePulls that are gone (superseded rollouts), so the set stays small.
    const live = new Set(prepulls.map((p) => p.metadata.uid));
    for (const key of this.#done)
      if (!live.has(key.slice(0, key.indexOf("|")))) this.#done.delete(key);
    for (const prepull of prepulls) {
      if (this.#abort.signal.aborted) return;
      const grantedAt = readGrants(prepull).get(me);
      if (grantedAt === undefined) continue;
      const key = `${prepull.metadata.uid}|${prepull.spec.images.join(",")}|${grantedAt}`;
      if (this.#done.has(key)) continue;
      if (nodeProgress(prepull, me) === "complete") {
        this.#done.add(key);
        continue;
      }
      try {
        await this.#pullFor(prepull);
        this.#done.add(key);
      } catch (error) {
        this.#options.onEvent({ type: "error", where: `prepull ${prepull.metadata.name}`, error });
      }
    }
  }

  async #credentials(prepull: PrePullObject): Promise<Map<string, Credential>> {
    const found = new Map<string, Credential>();
    const namespace = prepull.metadata.namespace ?? "default";
    for (const { name } of prepull.spec.imagePullSecrets ?? []) {
      try {
        const secret = await this.#core.readNamespacedSecret({ name, namespace });
        for (const [host, credential] of credentialsFromSecret(secret)) {
          if (!found.has(host)) found.set(host, credential);
        }
      } catch (error) {
        // As kubelet does: a missing secret is reported and the pull is tried without it.
        this.#options.onEvent({ type: "error", where: `secret ${namespace}/${name}`, error });
      }
    }
    return found;
  }

  async #pullFor(prepull: PrePullObject): Promise<void> {
    const { target } = this.#options;
    const signal = this.#abort.signal;
    const credentials = await this.#credentials(prepull);
    const images: NodeImageStatus[] = [];
    for (const text of prepull.spec.images) {
      const presence = await target.status(parseReference(text), signal).catch(() => undefined);
      images.push(
        presence?.present === true
          ? { image: text, state: "present", ...digestOf(presence.repoDigests) }
          : { image: text, state: "pulling" },
      );
    }
    await this.#report(prepull, images);
    for (const entry of images) {
      if (entry.state !== "pulling" || signal.aborted) continue;
      const ref = parseReference(entry.image);
      const credential = credentials.get(canonicalHost(ref.domain));
      try {
        const presence = await target.pull(ref, {
          signal,
          ...(credential === undefined ? {} : { credential }),
        });
        Object.assign(entry, { state: "present", ...digestOf(presence.repoDigests) });
        this.#options.onEvent({
          type: "pull",
          prepull: prepull.metadata.name,
          image: entry.image,
          state: "present",
        });
      } catch (error) {
        if (signal.aborted) return;
        const reason =
          error instanceof FerryError ? `${error.code}: ${error.message}` : String(error);
        Object.assign(entry, { state: "failed", reason });
        this.#options.onEvent({
          type: "pull",
          prepull: prepull.metadata.name,
          image: entry.image,
          state: "failed",
          reason,
        });
      }
      await this.#report(prepull, images);
    }
  }

  /** Merge-patches this node's entry and the recomputed `ready` count, retrying on conflict. */
  async #report(prepull: PrePullObject, images: readonly NodeImageStatus[]): Promise<void> {
    const me = this.#options.nodeName;
    const entry = nodeStatus(
      images.map((i) => ({ ...i })),
      new Date(),
    );
    const name = prepull.metadata.name;
    const namespace = prepull.metadata.namespace ?? "default";
    const address = {
      group: PREPULL_GROUP,
      version: PREPULL_VERSION,
      plural: PREPULL_PLURAL,
      namespace,
      name,
    };
    let current: PrePullObject = prepull;
    for (let attempt = 0; ; attempt++) {
      const body = {
        metadata: { resourceVersion: current.metadata.resourceVersion },
        status: { nodes: { [me]: entry }, ready: readyCount(current.status?.nodes, me, entry) },
      };
      try {
        await this.#custom.patchNamespacedCustomObjectStatus(
          { ...address, body },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        return;
      } catch (error) {
        if (apiStatus(error) !== 409 || attempt >= MAX_CONFLICT_RETRIES) throw error;
        current = (await this.#custom.getNamespacedCustomObject(address)) as PrePullObject;
      }
    }
  }
}

function digestOf(repoDigests: readonly string[] | undefined): { digest?: string } {
  const first = repoDigests?.find((d) => d.includes("@"));
  return first === undefined ? {} : { digest: first.slice(first.indexOf("@") + 1) };
}
