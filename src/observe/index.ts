/** The leaf every module may import: `FerryError` (code, hint, fields), metrics, assets, words for messages. */
export { type ErrorCode, FerryError, type FerryErrorOptions, isFerryError } from "./errors.ts";
export { Metrics } from "./metrics.ts";
export { embeddedAsset, embeddedAssetKeys } from "./embedded.ts";
export { oneOf } from "./words.ts";
