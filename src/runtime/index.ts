/** Targets that receive warmed images: the Docker Engine API and containerd through the CRI. */
import { FerryError } from "../observe/index.ts";
import { CriTarget, type CriTargetOptions } from "./cri.ts";
import { DockerTarget, type DockerTargetOptions } from "./docker.ts";
import type { Target, TargetKind } from "./target.ts";

export type { LabelOutcome } from "./containerd-pin.ts";
export { CRI_NAMESPACE, honoursPinLabel, PINNED_LABEL, PINNED_VALUE } from "./containerd-pin.ts";
export { CriTarget, type CriTargetOptions } from "./cri.ts";
export { authConfig, type CriImage, type RuntimeVersion } from "./cri-messages.ts";
export {
  DockerTarget,
  type DockerTargetOptions,
  dockerName,
  registryAuthHeader,
} from "./docker.ts";
export {
  type CriEndpoint,
  criEndpoint,
  DEFAULT_CRI_ENDPOINT,
  DEFAULT_DOCKER_HOST,
  type DockerEndpoint,
  dockerEndpoint,
} from "./endpoint.ts";
export {
  type ImagePresence,
  TARGET_KINDS,
  type Target,
  type TargetKind,
  type TargetPullOptions,
} from "./target.ts";

export interface CreateTargetOptions {
  /** The runtime's socket: DOCKER_HOST-style for docker, CONTAINER_RUNTIME_ENDPOINT-style for containerd. */
  endpoint?: string;
  /** Where DOCKER_HOST / CONTAINER_RUNTIME_ENDPOINT are read; process.env by default. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Deadline of calls other than pulls; 30 s by default. */
  timeoutMs?: number;
}

/** A runtime target by kind. "store" is ferry's own store, built by agent/ over the pull engine. */
export function createTarget(kind: TargetKind, options: CreateTargetOptions = {}): Target {
  const common = {
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  switch (kind) {
    case "docker": {
      const docker: DockerTargetOptions = { ...common };
      if (options.endpoint !== undefined) docker.host = options.endpoint;
      return new DockerTarget(docker);
    }
    case "containerd": {
      const cri: CriTargetOptions = { ...common };
      if (options.endpoint !== undefined) cri.endpoint = options.endpoint;
      return new CriTarget(cri);
    }
    case "store":
      throw new FerryError("FERRY_INVALID_ARGUMENT", 'the "store" target is not a runtime', {
        hint: "build it with agent/'s createStoreTarget({ store, puller })",
        fields: { kind },
      });
  }
}
