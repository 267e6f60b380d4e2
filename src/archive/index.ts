/** `ferry save`/`load`: OCI and Docker archives to and from the store, with safe tar reading. */
export { type Compression, detectCompression } from "./compression.ts";
export {
  type LoadedImage,
  type LoadEvent,
  type LoadOptions,
  type LoadSummary,
  loadArchive,
} from "./load.ts";
export {
  type SaveImage,
  type SaveOptions,
  type SaveSummary,
  saveArchive,
  saveArchiveFile,
} from "./save.ts";
