/** OCI data without I/O: descriptors, manifest and index checks, media types, platforms. */
export {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
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
