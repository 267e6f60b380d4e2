import { gunzipSync } from "node:zlib";

/** eStargz footer: an empty gzip member whose extra field is "%016xSTARGZ" (the TOC's offset). */
export const FOOTER_SIZE = 51;
/** The original stargz footer: the same, without the "SG" subfield header. */
export const LEGACY_FOOTER_SIZE = 47;

const MAGIC = "STARGZ";
const HEX_DIGITS = 16;
const GZIP_FLAG_EXTRA = 0x04;

export interface Footer {
  /** Where the TOC's gzip member starts in the blob. */
  readonly tocOffset: number;
  /** Bytes the footer takes at the end of the blob (51, or 47 for legacy stargz). */
  readonly size: number;
}

/**
 * Reads the footer out of the last bytes of a blob (at least 51 when the blob
 * is that long). Returns undefined when the tail is not a stargz footer (a
 * plain gzip layer); throws nothing, so callers decide what "not lazy" means.
 */
export function parseFooter(tail: Uint8Array): Footer | undefined {
  const buf = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  if (buf.length >= FOOTER_SIZE) {
    const footer = buf.subarray(buf.length - FOOTER_SIZE);
    const offset = readFooter(footer, 26, 16, true);
    if (offset !== undefined) return { tocOffset: offset, size: FOOTER_SIZE };
  }
  if (buf.length >= LEGACY_FOOTER_SIZE) {
    const footer = buf.subarray(buf.length - LEGACY_FOOTER_SIZE);
    const offset = readFooter(footer, 22, 12, false);
    if (offset !== undefined) return { tocOffset: offset, size: LEGACY_FOOTER_SIZE };
  }
  return undefined;
}

function readFooter(
  footer: Buffer,
  xlen: number,
  payloadAt: number,
  subfield: boolean,
): number | undefined {
  if (footer[0] !== 0x1f || footer[1] !== 0x8b || footer[2] !== 8) return undefined;
  if (((footer[3] ?? 0) & GZIP_FLAG_EXTRA) === 0) return undefined;
  if (footer.readUInt16LE(10) !== xlen) return undefined;
  if (subfield) {
    if (footer[12] !== 0x53 || footer[13] !== 0x47) return undefined; // "SG"
    if (footer.readUInt16LE(14) !== HEX_DIGITS + MAGIC.length) return undefined;
  }
  const payload = footer.toString("latin1", payloadAt, payloadAt + HEX_DIGITS + MAGIC.length);
  if (!payload.endsWith(MAGIC)) return undefined;
  const hex = payload.slice(0, HEX_DIGITS);
  if (!/^[0-9a-f]{16}$/.test(hex)) return undefined;
  // The footer must itself be a complete, empty gzip member.
  try {
    if (gunzipSync(footer).length !== 0) return undefined;
  } catch {
    return undefined;
  }
  const offset = BigInt(`0x${hex}`);
  return offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(offset);
}
