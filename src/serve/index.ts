/** Serving a blob over HTTP, for the mirror and the peer listener: one Range policy, a stored blob, a still-growing one. */
export {
  type GrowingBlob,
  type GrowingOutcome,
  type GrowingRequest,
  serveGrowingBlob,
} from "./growing.ts";
export { type BlobHeaders, refuseRange, writeBlobHead } from "./head.ts";
export { type ByteSpan, parseRange } from "./range.ts";
export type { Pace } from "./send-file.ts";
export { type BlobRequest, serveStoredBlob } from "./stored.ts";
