import type { Credential } from "../config/index.ts";
import type { Reference } from "../reference/index.ts";

/** Where an image is warmed into: a container runtime, or ferry's own store. The one list of kinds. */
export const TARGET_KINDS = ["docker", "containerd", "store"] as const;
export type TargetKind = (typeof TARGET_KINDS)[number];

export interface ImagePresence {
  present: boolean;
  /** The runtime's id for the image (config digest for Docker, image id for CRI), when present. */
  id?: string;
  /** Repo digests the runtime knows for it (name@sha256:…), when it says. */
  repoDigests?: string[];
}

export interface TargetPullOptions {
  /** `os/arch[/variant]`; the runtime's own platform when absent. */
  platform?: string;
  /** Credentials for the image's registry, passed to the runtime as it expects them. */
  credential?: Credential;
  signal?: AbortSignal;
}

/**
 * A place images are warmed into. Implementations: Docker Engine API and the
 * CRI image service (runtime/), ferry's store (agent/, over the pull engine).
 */
export interface Target {
  readonly kind: TargetKind;
  /** Human name for output, e.g. "docker (unix:///run/docker.sock)". */
  readonly name: string;
  /** Resolves when the runtime answers; throws a FerryError (FERRY_RUNTIME_UNAVAILABLE) when it does not. */
  ping(signal?: AbortSignal): Promise<void>;
  /**
   * Whether the target holds the image for `platform` (`os/arch[/variant]`; the target's own
   * when absent): a copy for another platform is not present.
   */
  status(ref: Reference, signal?: AbortSignal, platform?: string): Promise<ImagePresence>;
  /** Pulls the image into the runtime; resolves when it is present. */
  pull(ref: Reference, options?: TargetPullOptions): Promise<ImagePresence>;
  /** Protect a warmed image from the runtime's own garbage collection, where supported (containerd's pinned label via CRI). */
  pin?(ref: Reference, signal?: AbortSignal): Promise<boolean>;
  /** Undo `pin` (an image taken off a list); true when a pin was removed. */
  unpin?(ref: Reference, signal?: AbortSignal): Promise<boolean>;
  /** Where the runtime keeps images (CRI ImageFsInfo), where it reports them. */
  imageFilesystems?(signal?: AbortSignal): Promise<{ mountpoint: string }[]>;
  close(): Promise<void>;
}
