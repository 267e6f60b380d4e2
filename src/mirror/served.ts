import { canonicalHost } from "../config/index.ts";
import { FerryError } from "../observe/index.ts";
import { registryHostRefusal } from "../registry/index.ts";
import { DistributionError } from "./errors.ts";

/** In `--allow-ns` or `mirror.namespaces`: every registry a client names (containerd's open behaviour). */
export const ANY_REGISTRY = "*";

/**
 * The registries a mirror pulls through for its clients: its upstream (requests without
 * `?ns=`) and those listed, or any with `*`. Asked before anything else, so a client
 * cannot make the mirror connect where it alone points.
 */
export class ServedRegistries {
  readonly #any: boolean;
  readonly #hosts: ReadonlySet<string>;

  /** `allowed` as given by the operator: checked with `parseServedList` first. */
  constructor(upstream: string, allowed: readonly string[]) {
    this.#any = allowed.includes(ANY_REGISTRY);
    this.#hosts = new Set([upstream, ...allowed].map(canonicalHost));
  }

  /** Throws 403 DENIED unless `namespace` (a request's `?ns=`) is served; undefined is the upstream. */
  check(namespace: string | undefined): void {
    if (namespace === undefined) return;
    const listed = this.#hosts.has(canonicalHost(namespace));
    const refusal = registryHostRefusal(namespace);
    if (refusal !== undefined || !(listed || this.#any)) {
      throw new DistributionError(
        403,
        "DENIED",
        `this mirror does not serve registry ${namespace}`,
        {
          detail: {
            namespace,
            reason: refusal ?? "not among the registries this mirror is configured for",
          },
        },
      );
    }
  }
}

/** Checks an operator's list (`--allow-ns a,b` or the config's list): hosts as image references name them, or `*`. */
export function parseServedList(entries: readonly string[], from: string): string[] {
  const list = entries.map((e) => e.trim()).filter((e) => e !== "");
  for (const entry of list) {
    if (entry === ANY_REGISTRY) continue;
    const why = registryHostRefusal(entry);
    if (why !== undefined)
      throw new FerryError("FERRY_INVALID_ARGUMENT", `${from}: "${entry}" is ${why}`, {
        hint: `list registries as image references name them (HOST or HOST:PORT, e.g. ghcr.io or 127.0.0.1:5000), or ${ANY_REGISTRY} for any`,
      });
  }
  return list;
}
