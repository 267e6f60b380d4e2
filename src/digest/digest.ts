import { createHash } from "node:crypto";
import { FerryError } from "../observe/index.ts";

/** The one algorithm ferry verifies with; others are refused explicitly, never skipped. */
export const SHA256 = "sha256";
const SHA256_HEX = /^[a-f0-9]{64}$/;
const ALGORITHM = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/;

export interface ParsedDigest {
  readonly algorithm: typeof SHA256;
  readonly hex: string;
}

/** Parses `sha256:<64 hex>`; throws FERRY_INVALID_DIGEST or FERRY_UNSUPPORTED_DIGEST. */
export function parseDigest(value: string): ParsedDigest {
  const colon = value.indexOf(":");
  if (colon <= 0) {
    throw new FerryError(
      "FERRY_INVALID_DIGEST",
      `invalid digest "${value}": expected ALGORITHM:HEX`,
      {
        hint: 'digests look like "sha256:" followed by 64 hexadecimal characters',
      },
    );
  }
  const algorithm = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!ALGORITHM.test(algorithm)) {
    throw new FerryError("FERRY_INVALID_DIGEST", `invalid digest algorithm in "${value}"`);
  }
  if (algorithm !== SHA256) {
    throw new FerryError(
      "FERRY_UNSUPPORTED_DIGEST",
      `digest algorithm "${algorithm}" is not supported (only sha256)`,
      { hint: "refer to the content by its sha256 digest", fields: { digest: value } },
    );
  }
  if (!SHA256_HEX.test(hex)) {
    throw new FerryError(
      "FERRY_INVALID_DIGEST",
      `invalid sha256 digest "${value}": expected 64 lowercase hexadecimal characters, got ${hex.length}`,
    );
  }
  return { algorithm: SHA256, hex };
}

export function isDigest(value: string): boolean {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function digestOf(data: Uint8Array | string): string {
  return `${SHA256}:${createHash(SHA256).update(data).digest("hex")}`;
}

/**
 * Hashes bytes as they pass and checks them against an expected digest and size.
 * Size overrun is detected as soon as it happens, so a lying server cannot fill the disk.
 */
export class DigestVerifier {
  readonly expected: string;
  readonly expectedSize: number | undefined;
  #hash = createHash(SHA256);
  #bytes = 0;

  constructor(expected: string, expectedSize?: number) {
    parseDigest(expected);
    this.expected = expected;
    this.expectedSize = expectedSize;
  }

  get bytes(): number {
    return this.#bytes;
  }

  update(chunk: Uint8Array): void {
    this.#bytes += chunk.byteLength;
    if (this.expectedSize !== undefined && this.#bytes > this.expectedSize) {
      throw sizeMismatch(this.expected, this.expectedSize, this.#bytes);
    }
    this.#hash.update(chunk);
  }

  /** Finishes hashing; throws FERRY_SIZE_MISMATCH or FERRY_DIGEST_MISMATCH. */
  verify(): string {
    if (this.expectedSize !== undefined && this.#bytes !== this.expectedSize) {
      throw sizeMismatch(this.expected, this.expectedSize, this.#bytes);
    }
    const actual = `${SHA256}:${this.#hash.digest("hex")}`;
    if (actual !== this.expected) {
      throw new FerryError(
        "FERRY_DIGEST_MISMATCH",
        `content of ${this.expected} does not match its digest (got ${actual})`,
        {
          hint: "the registry or something between it and you served corrupted data; nothing was stored — retry, and report it to the registry operator if it persists",
          fields: { expected: this.expected, actual },
        },
      );
    }
    return actual;
  }
}

/** How many bytes arrived past the expected size depends on read sizes: only "longer" is said. */
function sizeMismatch(digest: string, expected: number, got: number): FerryError {
  const what =
    got > expected
      ? `is longer than the ${expected} bytes its descriptor gives`
      : `ended after ${got} of the ${expected} bytes its descriptor gives`;
  return new FerryError("FERRY_SIZE_MISMATCH", `content of ${digest} ${what}`, {
    hint: "the registry served a truncated or oversized body; nothing was stored — retry the pull",
    fields: { digest, expected, received: got },
  });
}
