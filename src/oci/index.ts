export {
  type Descriptor,
  DescriptorSchema,
  type ImageIndex,
  type ImageManifest,
  type ParsedManifest,
  type Platform,
  parseManifest,
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
  formatPlatform,
  hostPlatform,
  parsePlatform,
  platformMatches,
  selectPlatform,
} from "./platform.ts";
