/**
 * Every Node, listed and watched once for the elected instance: the rollout controller (where
 * a workload may run) and the NodeImages controller (which PrePulls select a node) share it, so
 * the leader holds one all-node list and watch, not one per controller.
 */
import { CoreV1Api, type KubeConfig, type V1Node } from "@kubernetes/client-node";
import { CollectionWatch } from "./watcher.ts";

export class ClusterNodes {
  readonly #watch: CollectionWatch<V1Node>;
  readonly #listeners = new Set<() => void>();
  #started: Promise<void> | undefined;

  constructor(kubeConfig: KubeConfig, onError: (error: unknown) => void) {
    const core = kubeConfig.makeApiClient(CoreV1Api);
    this.#watch = new CollectionWatch<V1Node>({
      config: kubeConfig,
      path: "/api/v1/nodes",
      list: () => core.listNode({}),
      onChange: () => {
        for (const listener of this.#listeners) listener();
      },
      onError,
      retryFirstList: true,
    });
  }

  get items(): V1Node[] {
    return this.#watch.items;
  }

  /** Called after every change; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves once listed; every caller shares the one start. */
  start(): Promise<void> {
    this.#started ??= this.#watch.start();
    return this.#started;
  }

  stop(): void {
    this.#listeners.clear();
    this.#watch.stop();
  }
}
