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
