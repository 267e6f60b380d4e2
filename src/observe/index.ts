/** The leaf every module may import: `FerryError` (code, hint, fields), metrics, assets. */
export { type ErrorCode, FerryError, type FerryErrorOptions, isFerryError } from "./errors.ts";
export { Metrics } from "./metrics.ts";
export { embeddedAsset, embeddedAssetKeys } from "./embedded.ts";
