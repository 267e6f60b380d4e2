/** Kubernetes Events (core/v1, so `kubectl describe` shows them) on the node and PrePull objects. */
import { randomBytes } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";
import { COMPONENT } from "./names.ts";

export interface InvolvedObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly uid?: string | undefined;
}

export interface KubeEvent {
  readonly involved: InvolvedObject;
  /** CamelCase, stable: tests and alerts match on it */
  readonly reason: string;
  readonly message: string;
  readonly warning?: boolean;
}

export class EventRecorder {
  readonly #core: CoreV1Api;
  readonly #namespace: string;
  readonly #host: string;
  readonly #onError: (error: unknown) => void;

  constructor(
    core: CoreV1Api,
    options: { namespace: string; host: string; onError: (error: unknown) => void },
  ) {
    this.#core = core;
    this.#namespace = options.namespace;
    this.#host = options.host;
    this.#onError = options.onError;
  }

  /** Fire and forget: an Event that cannot be written is logged, never fatal. */
  record(event: KubeEvent): void {
    // Cluster-scoped objects (the node) get their events in the agent's namespace.
    const namespace = event.involved.namespace ?? this.#namespace;
    const now = new Date();
    const name = `${event.involved.name}.${randomBytes(8).toString("hex")}`;
    this.#core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: event.involved.apiVersion,
            kind: event.involved.kind,
            name: event.involved.name,
            ...(event.involved.namespace === undefined
              ? {}
              : { namespace: event.involved.namespace }),
            ...(event.involved.uid === undefined ? {} : { uid: event.involved.uid }),
          },
          reason: event.reason,
          message: event.message,
          type: event.warning ? "Warning" : "Normal",
          source: { component: COMPONENT, host: this.#host },
          reportingComponent: COMPONENT,
          reportingInstance: this.#host,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch(this.#onError);
  }
}
