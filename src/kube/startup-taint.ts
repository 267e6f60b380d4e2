/**
 * The node's startup taint, reconciled: removed once every required image is in the runtime;
 * in continuous mode added back when one goes missing. Each change is a conditional patch
 * (taint.ts), logged, counted and recorded as an Event on the node.
 */
import type { CoreV1Api, KubeConfig, V1Node } from "@kubernetes/client-node";
import type { EventRecorder, InvolvedObject } from "./events.ts";
import type { KubeMetrics } from "./metrics.ts";
import { changeTaint, planTaintAddition, planTaintRemoval } from "./taint.ts";

export type TaintMode = "bootstrap" | "continuous";

export interface StartupTaintOptions {
  readonly core: CoreV1Api;
  /** for reading the node as raw JSON (taint.ts) */
  readonly config: KubeConfig;
  readonly nodeName: string;
  readonly key: string;
  readonly mode: TaintMode;
  readonly metrics: KubeMetrics;
  readonly events: EventRecorder;
  readonly log: (entry: Record<string, unknown>) => void;
}

export class StartupTaint {
  readonly #o: StartupTaintOptions;
  /** undefined until the node has been seen */
  present: boolean | undefined;
  removedAt: string | undefined;
  /** Why the taint is kept although every readable required image is present (unreadable lists). */
  heldBy: readonly string[] = [];
  #heldMessage = "";

  constructor(options: StartupTaintOptions) {
    this.#o = options;
  }

  /**
   * `missing`: required images not in the runtime (empty: all present). `unreadable`: image-list
   * sources that could not be read (they may name required images nobody knows about), so the
   * taint stays while there is any: fail closed. `beforeRemoval` runs just before the taint is
   * removed (pinning the required images against GC).
   */
  async reconcile(
    node: V1Node,
    required: number,
    missing: readonly string[],
    unreadable: readonly string[],
    beforeRemoval?: () => Promise<void>,
  ): Promise<void> {
    const { key, nodeName, metrics } = this.#o;
    const has = node.spec?.taints?.some((t) => t.key === key) ?? false;
    this.present = has;
    metrics.tainted(nodeName, has);
    const involved: InvolvedObject = {
      apiVersion: "v1",
      kind: "Node",
      name: nodeName,
      uid: node.metadata?.uid,
    };
    this.heldBy = has ? unreadable : [];
    if (has && missing.length === 0 && unreadable.length > 0) {
      const message = `every readable required image (${required}) is in the runtime, but taint ${key} stays until these image lists can be read: ${unreadable.join("; ")}`;
      if (message === this.#heldMessage) return;
      this.#heldMessage = message;
      this.#o.log({
        level: "warn",
        msg: "startup taint kept: image lists unreadable",
        key,
        unreadable,
      });
      this.#o.events.record({
        involved,
        reason: "StartupTaintKept",
        message,
        warning: true,
      });
      return;
    }
    this.#heldMessage = "";
    if (has && missing.length === 0) {
      await beforeRemoval?.();
      const change = await changeTaint(
        this.#o.core,
        this.#o.config,
        nodeName,
        (taints) => planTaintRemoval(taints, key),
        (attempt) =>
          this.#o.log({
            level: "info",
            msg: "node taints changed under the patch: reading again",
            attempt,
          }),
      );
      if (change !== "changed") return;
      this.present = false;
      this.removedAt = new Date().toISOString();
      const created = node.metadata?.creationTimestamp;
      const since =
        created === undefined ? undefined : (Date.now() - new Date(created).getTime()) / 1000;
      if (since !== undefined) metrics.taintRemoved(nodeName, since);
      metrics.tainted(nodeName, false);
      this.#o.log({
        level: "info",
        msg: "startup taint removed",
        node: nodeName,
        key,
        secondsSinceNodeCreation: since,
      });
      this.#o.events.record({
        involved,
        reason: "StartupTaintRemoved",
        message: `every required image (${required}) is in the runtime: removed taint ${key}`,
      });
    } else if (!has && missing.length > 0 && this.#o.mode === "continuous") {
      const change = await changeTaint(this.#o.core, this.#o.config, nodeName, (taints, rv) =>
        planTaintAddition(taints, rv, key),
      );
      if (change !== "changed") return;
      this.present = true;
      metrics.tainted(nodeName, true);
      this.#o.log({
        level: "warn",
        msg: "required images missing: node tainted again",
        key,
        missing,
      });
      this.#o.events.record({
        involved,
        reason: "StartupTaintAdded",
        message: `required images missing from the runtime (${missing.join(", ")}): added taint ${key}`,
        warning: true,
      });
    }
  }
}
