/** Digests: parsing, the verifying hasher, the SHA-instruction probe, a small SHA-256. */
export {
  DigestVerifier,
  digestOf,
  isDigest,
  type ParsedDigest,
  parseDigest,
  SHA256,
} from "./digest.ts";
export { hasShaInstructions } from "./cpu.ts";
export { SMALL_SHA256_MAX, smallSha256Hex } from "./sha256.ts";
