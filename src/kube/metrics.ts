/** The node's Kubernetes metrics, in the agent's registry (served on /metrics). */
import type { Metrics } from "../observe/index.ts";

export class KubeMetrics {
  readonly #present;
  readonly #missing;
  readonly #taintSeconds;
  readonly #tainted;
  readonly #refused;

  constructor(metrics: Metrics) {
    this.#present = metrics.gauge(
      "ferry_kube_images_present",
      "Required and PrePull images present in the node's runtime",
    );
    this.#missing = metrics.gauge(
      "ferry_kube_images_missing",
      "Required and PrePull images not (yet) in the node's runtime",
    );
    this.#taintSeconds = metrics.gauge(
      "ferry_kube_startup_taint_removed_seconds",
      "Seconds from the node's creation to the removal of its startup taint",
    );
    this.#tainted = metrics.gauge(
      "ferry_kube_startup_taint",
      "1 while the node carries ferry's startup taint",
    );
    this.#refused = metrics.counter(
      "ferry_kube_headroom_refusals_total",
      "Warms refused because the image filesystem would pass kubelet's GC threshold",
    );
  }

  images(node: string, present: number, missing: number): void {
    this.#present(present, { node });
    this.#missing(missing, { node });
  }

  tainted(node: string, tainted: boolean): void {
    this.#tainted(tainted ? 1 : 0, { node });
  }

  taintRemoved(node: string, secondsSinceCreation: number): void {
    this.#taintSeconds(secondsSinceCreation, { node });
  }

  headroomRefused(node: string): void {
    this.#refused({ node });
  }
}

/** The elected controller's NodeImages and aggregate metrics. */
export class NodeImagesMetrics {
  readonly #writes;
  readonly #ready;
  readonly #selected;

  constructor(metrics: Metrics) {
    this.#writes = metrics.counter(
      "ferry_kube_nodeimages_writes_total",
      "Writes of the elected controller: a node's NodeImages spec, one deleted, a PrePull's aggregate",
    );
    this.#ready = metrics.gauge(
      "ferry_kube_prepull_ready_nodes",
      "Nodes holding every image of the PrePull, from their NodeImages",
    );
    this.#selected = metrics.gauge(
      "ferry_kube_prepull_selected_nodes",
      "Nodes the PrePull selects",
    );
  }

  wrote(what: "spec" | "delete" | "aggregate"): void {
    this.#writes({ what });
  }

  prepull(prepull: string, ready: number, selected: number): void {
    this.#ready(ready, { prepull });
    this.#selected(selected, { prepull });
  }
}
