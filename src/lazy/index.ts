/** Lazy pulling: eStargz conversion, the on-demand reader by range, the FUSE mount (`mount/`). */
export {
  type ConvertedLayerSummary,
  type ConvertEvent,
  type ConverterOptions,
  type ConvertOptions,
  type ConvertSummary,
  EstargzConverter,
  UNCOMPRESSED_SIZE_ANNOTATION,
} from "./convert.ts";
export type { ImagePlace } from "./convert-places.ts";
export {
  DEFAULT_CHUNK_SIZE,
  EstargzWriter,
  type EstargzResult,
  NO_PREFETCH_LANDMARK,
  PREFETCH_LANDMARK,
} from "./estargz-writer.ts";
export { FOOTER_SIZE, type Footer, LEGACY_FOOTER_SIZE, parseFooter } from "./footer.ts";
export { type ImageEntry, LazyImage, type LazyImageOptions, type LayerStats } from "./reader.ts";
export {
  type Chunk,
  cleanPath,
  type EntryType,
  extractTocJson,
  parseToc,
  TOC_DIGEST_ANNOTATION,
  TOC_NAME,
  type Toc,
  type TocEntry,
  verifyTocDigest,
} from "./toc.ts";
export {
  ChunkStore,
  imageArgs,
  isFuseMountPoint,
  LazyLayers,
  type LazyLayerSource,
  type LazyLayersEvent,
  type LazyLayersOptions,
  LazyMount,
  type MountEvent,
  type MountImage,
  type MountOptions,
  type MountState,
  type MountStats,
  mountOverlay,
  mountStateDir,
  OPAQUE_XATTR,
  type Overlay,
  overlayLayerEntries,
  openMountImage,
  prioritized,
  removeMountState,
  type RunConfig,
  type RunContainerOptions,
  type RunResult,
  runContainer,
  runtimeSpec,
  unmountDir,
  writeMountState,
} from "./mount/index.ts";
