export {
  DigestVerifier,
  digestOf,
  isDigest,
  type ParsedDigest,
  parseDigest,
  SHA256,
} from "./digest.ts";
export { hasShaInstructions } from "./cpu.ts";
