import type { Metrics } from "../observe/index.ts";
import type { Descriptor } from "../oci/index.ts";
import type { Limiter, Puller } from "../pull/index.ts";
import type { RegistryClient } from "../registry/index.ts";
import type { Store } from "../store/index.ts";
import type { AccessPolicy } from "./access.ts";
import type { Guard } from "./guard.ts";
import type { MirrorCounters } from "./metrics.ts";
import type { ServedRegistries } from "./served.ts";

export interface MirrorOptions {
  store: Store;
  puller: Puller;
  registry: RegistryClient;
  /** The registry that requests without `?ns=` are for (Docker's `registry-mirrors` means docker.io). */
  defaultNamespace: string;
  /** The registries `?ns=` may name. */
  served: ServedRegistries;
  /** How long a tag is answered from the store before the upstream is asked again. */
  tagTtlMs: number;
  metrics: Metrics;
  log: (entry: Record<string, unknown>) => void;
  /**
   * The mirror's own client auth (`--auth-file`). Without it every client is anonymous
   * and `registry` must fetch without credentials.
   */
  access?: AccessPolicy;
  /** Fetches without credentials, to prove repositories public; defaults to `registry`. */
  anonymousRegistry?: RegistryClient;
  /** Upstream manifest, blob-check and tag-list requests at once (blob downloads: the puller's concurrency); default 32. */
  upstreamRequests?: number;
}

/** What the mirror's request handlers share: its options, guard, counters and upstream cap. */
export interface MirrorParts {
  options: MirrorOptions;
  guard: Guard;
  count: MirrorCounters;
  upstream: Limiter;
  /** Sizes of blobs named by manifests this mirror has served, so a miss needs no HEAD upstream. */
  known: Map<string, Descriptor>;
}
