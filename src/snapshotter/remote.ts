// Remote layers from a registry: the layer a Prepare names is looked up in its image's verified
// manifest (media type, size, TOC digest annotation) and mounted with the lazy module's
// per-layer FUSE mount; the registry client carries ferry's credentials for that host only.
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { promisify } from "node:util";
import {
  isFuseMountPoint,
  LazyLayers,
  type LazyLayersEvent,
  TOC_DIGEST_ANNOTATION,
} from "../lazy/index.ts";
import { type Descriptor, hostPlatform, MediaType, resolveImage } from "../oci/index.ts";
import { parseReference } from "../reference/index.ts";
import { type RegistryClient, RegistrySource, type Repository } from "../registry/index.ts";
import type { RemoteRequest } from "./labels.ts";
import type { RemoteLayers } from "./snapshotter.ts";
import type { RemoteLayer } from "./table.ts";

const execFileAsync = promisify(execFile);

export type RemoteEvent =
  | { type: "not-lazy"; layer: string; why: string }
  | { type: "mount"; snapshot: string; event: LazyLayersEvent };

export interface RegistryLayersOptions {
  registry: RegistryClient;
  /** Where the lazy layers' filesystem is mounted (a directory of its own). */
  dir: string;
  /** The ferry store whose chunk cache the layers share. */
  storeDir: string;
  fetchTimeoutMs: number;
  /** Prefetch each layer's prioritized files once mounted (default true). */
  prefetch?: boolean;
  /** Fetch the rest of each layer behind the reads at this rate (bytes/s); off when undefined. */
  backgroundBytesPerSecond?: number | undefined;
  onEvent?: (event: RemoteEvent) => void;
}

const ESTARGZ_TYPES: ReadonlySet<string> = new Set([
  MediaType.ociLayerGzip,
  MediaType.dockerLayerGzip,
]);

export class RegistryLayers implements RemoteLayers {
  readonly #options: RegistryLayersOptions;
  readonly #emit: (event: RemoteEvent) => void;
  readonly #lazy: LazyLayers;
  /** Layers by image reference: one manifest request per pull, not per layer. */
  readonly #manifests = new Map<string, Promise<readonly Descriptor[]>>();

  private constructor(options: RegistryLayersOptions, layers: LazyLayers) {
    this.#options = options;
    this.#emit = options.onEvent ?? (() => undefined);
    this.#lazy = layers;
  }

  /** Mounts the (empty) lazy layers' filesystem at `options.dir`, replacing one a dead ferry left. */
  static async open(options: RegistryLayersOptions): Promise<RegistryLayers> {
    await mkdir(options.dir, { recursive: true });
    // A filesystem whose process died answers nothing: detach it before mounting again.
    if (await isFuseMountPoint(options.dir)) await execFileAsync("umount", ["-l", options.dir]);
    const layers = await LazyLayers.mount({
      dir: options.dir,
      storeDir: options.storeDir,
      fetchTimeoutMs: options.fetchTimeoutMs,
      backgroundBytesPerSecond: options.backgroundBytesPerSecond,
      onEvent: (snapshot, event) => options.onEvent?.({ type: "mount", snapshot, event }),
    });
    return new RegistryLayers(options, layers);
  }

  async resolve(request: RemoteRequest): Promise<RemoteLayer | undefined> {
    const notLazy = (why: string) => {
      this.#emit({ type: "not-lazy", layer: request.layerDigest, why });
      return undefined;
    };
    const ref = parseReference(request.reference);
    const repository = { domain: ref.domain, path: ref.path };
    const version = ref.digest ?? ref.tag ?? "latest";
    let d = (await this.#cached(request.reference, repository, version, false)).find(
      (l) => l.digest === request.layerDigest,
    );
    // A tag may have moved since the manifest was cached: ask again before giving up.
    d ??= (await this.#cached(request.reference, repository, version, true)).find(
      (l) => l.digest === request.layerDigest,
    );
    if (d === undefined) return notLazy(`not a layer of ${request.reference}`);
    if (!ESTARGZ_TYPES.has(d.mediaType)) return notLazy(`media type ${d.mediaType}`);
    const tocDigest = d.annotations?.[TOC_DIGEST_ANNOTATION];
    if (tocDigest === undefined) return notLazy("no TOC digest annotation");
    if (request.tocDigest !== undefined && request.tocDigest !== tocDigest)
      return notLazy(
        `containerd passed TOC digest ${request.tocDigest}, the manifest says ${tocDigest}`,
      );
    return {
      reference: request.reference,
      digest: d.digest,
      size: d.size,
      mediaType: d.mediaType,
      tocDigest,
    };
  }

  async add(id: string, layer: RemoteLayer): Promise<void> {
    const ref = parseReference(layer.reference);
    await this.#lazy.add(id, {
      registry: this.#options.registry,
      repository: { domain: ref.domain, path: ref.path },
      descriptor: {
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.size,
        annotations: { [TOC_DIGEST_ANNOTATION]: layer.tocDigest },
      },
      prefetch: this.#options.prefetch ?? true,
    });
  }

  remove(id: string): Promise<void> {
    return this.#lazy.remove(id);
  }

  path(id: string): string {
    return this.#lazy.path(id);
  }

  close(): Promise<void> {
    return this.#lazy.unmount();
  }

  #cached(
    key: string,
    repository: Repository,
    version: string,
    fresh: boolean,
  ): Promise<readonly Descriptor[]> {
    let layers = fresh ? undefined : this.#manifests.get(key);
    if (layers === undefined) {
      layers = this.#layers(repository, version);
      this.#manifests.set(key, layers);
      layers.catch(() => this.#manifests.delete(key));
    }
    return layers;
  }

  /** The layers of the image's manifest for this host's platform, verified by the registry client. */
  async #layers(repository: Repository, reference: string): Promise<readonly Descriptor[]> {
    const source = new RegistrySource(this.#options.registry, repository);
    const { manifest } = await resolveImage(source, reference, hostPlatform());
    return manifest.layers;
  }
}
