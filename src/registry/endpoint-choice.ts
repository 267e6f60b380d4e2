// Which endpoint of a registry to ask: its live mirrors in order, then the registry; the last one that answered first.
import { FerryError, isFerryError } from "../observe/index.ts";
import { type Endpoint, type HostSettings, mirrorEndpoint, upstreamEndpoint } from "./endpoint.ts";

/** A mirror given up on: where, for which registry, why. */
export type MirrorFailure = { mirror: string; registry: string; reason: string };

export class EndpointChoice {
  readonly #settings: (host: string) => HostSettings | undefined;
  readonly #onMirrorFailed: (failure: MirrorFailure) => void;
  /** Mirrors that failed in this process: not asked again. */
  readonly #down = new Set<string>();
  /** The endpoint that last answered for a registry: blobs come from where the manifest came from. */
  readonly #preferred = new Map<string, Endpoint>();

  constructor(
    settings: (host: string) => HostSettings | undefined,
    onMirrorFailed: (failure: MirrorFailure) => void,
  ) {
    this.#settings = settings;
    this.#onMirrorFailed = onMirrorFailed;
  }

  /** Where a registry's repositories are read from, in order: live mirrors, then the registry. */
  endpoints(domain: string): Endpoint[] {
    const settings = this.#settings(domain);
    const mirrors = (settings?.mirrors ?? [])
      .map((m) => mirrorEndpoint(m, domain, this.#settings))
      .filter((e) => !this.#down.has(e.base));
    return [...mirrors, upstreamEndpoint(domain, settings)];
  }

  /** The endpoint that last answered for `domain`, else the first to ask. */
  current(domain: string): Endpoint {
    return this.#preferred.get(domain) ?? (this.endpoints(domain)[0] as Endpoint);
  }

  /** The mirror that last answered for a registry's repositories; undefined when the registry itself did. */
  answeredFrom(domain: string): string | undefined {
    const endpoint = this.#preferred.get(domain);
    return endpoint?.mirror ? endpoint.base : undefined;
  }

  /** A mirror failed mid-pull: stop using it in this process and say so. */
  mirrorFailed(domain: string, mirrorBase: string, reason: string): void {
    if (this.#down.has(mirrorBase)) return;
    this.#down.add(mirrorBase);
    if (this.#preferred.get(domain)?.base === mirrorBase) this.#preferred.delete(domain);
    this.#onMirrorFailed({ mirror: mirrorBase, registry: domain, reason });
  }

  /** Runs `op` on each endpoint in turn until one answers; a failing mirror is skipped from then on. */
  async firstAnswer<T>(
    domain: string,
    signal: AbortSignal | undefined,
    op: (endpoint: Endpoint) => Promise<T>,
  ): Promise<T> {
    const preferred = this.#preferred.get(domain);
    const all = this.endpoints(domain);
    const order =
      preferred === undefined ? all : [preferred, ...all.filter((e) => e.base !== preferred.base)];
    for (const endpoint of order) {
      try {
        const result = await op(endpoint);
        this.#preferred.set(domain, endpoint);
        return result;
      } catch (err) {
        if (!endpoint.mirror || signal?.aborted || isFerryError(err, "FERRY_INTERRUPTED"))
          throw err;
        this.mirrorFailed(domain, endpoint.base, err instanceof Error ? err.message : String(err));
      }
    }
    throw new FerryError("FERRY_INTERNAL", `no endpoint for ${domain}`);
  }
}
