export {
  DigestVerifier,
  digestOf,
  isDigest,
  type ParsedDigest,
  parseDigest,
  SHA256,
} from "./digest.ts";
