/**
 * A CRI runtime (containerd) as a warm target, over gRPC `runtime.v1.ImageService`: what kubelet
 * itself calls, so images land where kubelet looks (containerd's `k8s.io` namespace) and the
 * runtime's own registry configuration (mirrors, hosts.toml, plain-HTTP rules) applies.
 */
import { FerryError, isFerryError } from "../observe/index.ts";
import { formatReference, type Reference } from "../reference/index.ts";
import { CRI_NAMESPACE, type LabelOutcome, pinImage, unpinImage } from "./containerd-pin.ts";
import {
  authConfig,
  type CriImage,
  type ImageFilesystem,
  readImageFsInfo,
  readImageStatus,
  readVersion,
  type RuntimeVersion,
} from "./cri-messages.ts";
import { criEndpoint } from "./endpoint.ts";
import {
  connectionHint,
  interrupted,
  isStartingUp,
  pullFailed,
  runtimeError,
  runtimeUnavailable,
  unsupported,
} from "./errors.ts";
import { GrpcConnection, GrpcStatus, isServiceError } from "./grpc.ts";
import { hostPlatform, isHostPlatform } from "./platform.ts";
import type { ImagePresence, Target, TargetPullOptions } from "./target.ts";

const RUNTIME = "containerd";
const IMAGE_SERVICE = "runtime.v1.ImageService";
const RUNTIME_SERVICE = "runtime.v1.RuntimeService";
const CONTAINERD_IMAGES = "containerd.services.images.v1.Images";
const DEFAULT_TIMEOUT_MS = 30_000;
const WHERE = "point ferry at its socket (CONTAINER_RUNTIME_ENDPOINT=unix:///path/containerd.sock)";

export interface CriTargetOptions {
  /** unix:///path/containerd.sock or tcp://host:port; else CONTAINER_RUNTIME_ENDPOINT, else containerd's default. */
  endpoint?: string;
  /** Where CONTAINER_RUNTIME_ENDPOINT is read; process.env by default. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Deadline of every call but PullImage; 30 s by default. */
  timeoutMs?: number;
}

interface CallOptions {
  /** false for PullImage: a large image takes as long as it takes; the signal stops it. */
  readonly deadline?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
}

export class CriTarget implements Target {
  readonly kind = "containerd" as const;
  readonly name: string;
  readonly #endpoint: string;
  readonly #grpcTarget: string;
  readonly #timeoutMs: number;
  #connection: Promise<GrpcConnection> | undefined;

  constructor(options: CriTargetOptions = {}) {
    const endpoint = criEndpoint(options.endpoint, options.env);
    this.#endpoint = endpoint.text;
    this.#grpcTarget = endpoint.grpcTarget;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.name = `containerd (${endpoint.text})`;
  }

  /** Asks the runtime's version (crictl's first call too); FERRY_RUNTIME_UNAVAILABLE when it does not answer. */
  async ping(signal?: AbortSignal): Promise<void> {
    await this.version(signal);
  }

  async version(signal?: AbortSignal): Promise<RuntimeVersion> {
    return readVersion(await this.#call(RUNTIME_SERVICE, "Version", { version: "v1" }, signal));
  }

  async status(ref: Reference, signal?: AbortSignal, platform?: string): Promise<ImagePresence> {
    // The CRI holds images for the runtime's own platform only: another's is never present.
    if (platform !== undefined && !isHostPlatform(platform)) return { present: false };
    const image = await this.image(ref, signal);
    return image === undefined
      ? { present: false }
      : { present: true, id: image.id, repoDigests: [...image.repoDigests] };
  }

  /** ImageStatus of the reference; undefined when the runtime does not have it. */
  async image(ref: Reference, signal?: AbortSignal): Promise<CriImage | undefined> {
    const request = { image: { image: formatReference(ref) }, verbose: false };
    return readImageStatus(await this.#call(IMAGE_SERVICE, "ImageStatus", request, signal));
  }

  /** Where the runtime keeps images (CRI ImageFsInfo), as kubelet's image GC measures it. */
  async imageFilesystems(signal?: AbortSignal): Promise<ImageFilesystem[]> {
    return readImageFsInfo(await this.#call(IMAGE_SERVICE, "ImageFsInfo", {}, signal));
  }

  async pull(ref: Reference, options: TargetPullOptions = {}): Promise<ImagePresence> {
    const name = formatReference(ref);
    if (options.platform !== undefined && !isHostPlatform(options.platform)) {
      throw unsupported(
        RUNTIME,
        `cannot pull ${name} for ${options.platform}: the CRI pulls for the runtime's own platform (${hostPlatform()})`,
        "leave the platform out for CRI targets, or warm ferry's store for other platforms",
      );
    }
    const request = {
      image: { image: name },
      ...(options.credential === undefined ? {} : { auth: authConfig(ref, options.credential) }),
    };
    try {
      await this.#call(IMAGE_SERVICE, "PullImage", request, options.signal, { deadline: false });
    } catch (err) {
      if (isServiceError(err)) throw pullFailed(RUNTIME, name, err.details, err);
      throw err;
    }
    const presence = await this.status(ref, options.signal);
    if (!presence.present) {
      throw pullFailed(RUNTIME, name, "the runtime reported success but does not list the image");
    }
    return presence;
  }

  /**
   * Labels the image `io.cri-containerd.pinned=pinned` through containerd's own image service,
   * which containerd 1.7+ reports as CRI `pinned` (kubelet's image GC then spares it). True once
   * the runtime reports the image pinned; false when it does not honour the label (containerd
   * before 1.7, other CRI runtimes) — the label is set all the same where containerd serves it.
   */
  pin(ref: Reference, signal?: AbortSignal): Promise<boolean> {
    return pinImage(
      {
        image: (r, s) => this.image(r, s),
        version: (s) => this.version(s),
        label: (name, key, value, s) => this.#label(name, key, value, s),
      },
      ref,
      signal,
    );
  }

  /** Removes the pin label again (containerd's image service; an update mask without the value deletes it). */
  unpin(ref: Reference, signal?: AbortSignal): Promise<boolean> {
    return unpinImage(
      {
        image: (r, s) => this.image(r, s),
        version: (s) => this.version(s),
        label: (name, key, value, s) => this.#label(name, key, value, s),
      },
      ref,
      signal,
    );
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection !== undefined) (await connection.catch(() => undefined))?.close();
  }

  async #label(
    name: string,
    key: string,
    value: string | undefined,
    signal?: AbortSignal,
  ): Promise<LabelOutcome> {
    const request = {
      // A label named in the mask but absent from `labels` is deleted.
      image: { name, labels: value === undefined ? {} : { [key]: value } },
      update_mask: { paths: [`labels.${key}`] },
    };
    const metadata = { "containerd-namespace": CRI_NAMESPACE };
    try {
      await this.#call(CONTAINERD_IMAGES, "Update", request, signal, { metadata });
      return "labelled";
    } catch (err) {
      if (!isServiceError(err)) throw err;
      if (err.code === GrpcStatus.NOT_FOUND) return "absent";
      if (err.code === GrpcStatus.UNIMPLEMENTED || err.code === GrpcStatus.PERMISSION_DENIED) {
        return "unsupported";
      }
      throw runtimeError(RUNTIME, `label ${name}`, err.details, err);
    }
  }

  /** Closes `opening`'s channel unless another call has replaced it already. */
  #drop(opening: Promise<GrpcConnection>): void {
    if (this.#connection !== opening) return;
    this.#connection = undefined;
    void opening.then((connection) => connection.close());
  }

  #connect(): Promise<GrpcConnection> {
    this.#connection ??= GrpcConnection.open(this.#grpcTarget).catch((err: unknown) => {
      this.#connection = undefined;
      throw err;
    });
    return this.#connection;
  }

  /**
   * One call. Cancellation, an absent runtime and deadlines become FerryErrors; other gRPC
   * errors of PullImage and Update stay ServiceErrors for the caller to word.
   */
  async #call(
    service: string,
    method: string,
    request: object,
    signal: AbortSignal | undefined,
    options: CallOptions = {},
  ): Promise<unknown> {
    const opening = this.#connect();
    const connection = await opening;
    try {
      return await connection.call(service, method, request, {
        signal,
        timeoutMs: options.deadline === false ? undefined : this.#timeoutMs,
        ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
      });
    } catch (err) {
      if (isFerryError(err) || !isServiceError(err)) throw err;
      if (err.code === GrpcStatus.CANCELLED && signal?.aborted) throw interrupted(RUNTIME, err);
      if (err.code === GrpcStatus.UNAVAILABLE) {
        // A fresh channel connects at once when the runtime is back; this one may sit out its
        // reconnect backoff (up to max_reconnect_backoff_ms) failing every call meanwhile.
        this.#drop(opening);
        const code = /\b(E[A-Z]{3,})\b/.exec(err.details)?.[1];
        throw runtimeUnavailable(RUNTIME, this.#endpoint, unavailableReason(err.details), {
          hint: connectionHint(code, "containerd", WHERE),
          cause: err,
        });
      }
      if (err.code === GrpcStatus.DEADLINE_EXCEEDED) {
        throw new FerryError(
          "FERRY_TIMEOUT",
          `${RUNTIME} at ${this.#endpoint} did not answer ${method} in time`,
          {
            hint: "the runtime may be overloaded; its log may say more",
            fields: { runtime: RUNTIME, endpoint: this.#endpoint },
            cause: err,
          },
        );
      }
      if (isStartingUp(err.details)) {
        throw runtimeUnavailable(RUNTIME, this.#endpoint, "it is still starting", {
          hint: "containerd has just started and is loading its state; try again in a moment",
          cause: err,
        });
      }
      if (method === "PullImage" || method === "Update") throw err;
      if (err.code === GrpcStatus.UNIMPLEMENTED) {
        throw runtimeUnavailable(
          RUNTIME,
          this.#endpoint,
          `it does not serve ${service}/${method}`,
          {
            hint: "the CRI v1 API needs containerd 1.6+ with its `cri` plugin enabled (not in disabled_plugins)",
            cause: err,
          },
        );
      }
      throw runtimeError(RUNTIME, `answer ${method}`, err.details, err);
    }
  }
}

/** grpc-js's "No connection established. Last error: Error: connect ENOENT /x. Resolution note: " → "connect ENOENT /x". */
function unavailableReason(details: string): string {
  const last = /Last error: (?:Error: )?(.*?)\.?(?: Resolution note:.*)?$/s
    .exec(details)?.[1]
    ?.trim();
  return last === undefined || last === "" ? details : last;
}
