export { ChunkStore, type ChunkStoreOptions } from "./chunks.ts";
export { type MountImage, type MountLayer, openMountImage, type RunConfig } from "./image.ts";
export {
  LazyLayers,
  type LazyLayerSource,
  type LazyLayersEvent,
  type LazyLayersOptions,
} from "./layers-mount.ts";
export { OPAQUE_XATTR, overlayLayerEntries } from "./overlay-layer.ts";
export {
  LazyMount,
  type MountEvent,
  type MountOptions,
  type MountStats,
  prioritized,
} from "./mount.ts";
export { buildTree, type FsNode, type FsTree, type MountEntry, statMode } from "./tree.ts";
export {
  isFuseMountPoint,
  type MountState,
  mountStateDir,
  removeMountState,
  unmountDir,
  writeMountState,
} from "./control.ts";
export {
  imageArgs,
  mountOverlay,
  type Overlay,
  type RunContainerOptions,
  type RunResult,
  runContainer,
  runtimeSpec,
} from "./run.ts";
