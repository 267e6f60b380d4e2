/** OCI data without I/O: descriptors, manifest and index checks, media types, platforms. */
export {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
  declaredMediaType,
  parseDescriptor,
  parseManifest,
  parsePlatformObject,
} from "./manifest.ts";
export {
  Annotation,
  isImageManifestMediaType,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_ACCEPT,
  MediaType,
} from "./media-types.ts";
export {
  configPlatform,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  platformMatches,
  selectPlatform,
} from "./platform.ts";
export {
  boundedRange,
  checkRange,
  rangeAnswer,
  readAll,
  readRange,
  verifiedBlob,
} from "./blob-stream.ts";
export { pickImage, type ResolvedImage, type ResolveOptions, resolveImage } from "./resolve.ts";
export type {
  BlobSource,
  BlobSourceLocation,
  ByteRange,
  ImageSource,
  SourceManifest,
} from "./source.ts";
