export {
  type Asset,
  type AssetSet,
  contentTypeOf,
  DEFAULT_ASSETS_DIRS,
  loadAssets,
} from "./assets.ts";
export { createStatusPage, PAGE_PATHS, type StatusPage, type StatusPageOptions } from "./page.ts";
export { REDACTED, redactSecrets } from "./redact.ts";
export { RingBuffer, type Sample, Sampler, type SamplerOptions } from "./ring.ts";
