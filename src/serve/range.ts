/** Bytes [start, end) of a blob: what one satisfiable range asks for. */
export type ByteSpan = [start: number, end: number];

const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;

/**
 * A Range header over a blob of `size` bytes, as RFC 9110 §14 reads it (design note 17):
 * undefined when the whole blob is the answer (no header, another unit, a header that is
 * not valid `bytes=` syntax, or several ranges), "unsatisfiable" for one valid range that
 * the blob does not reach (416), else the one span asked for (206).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteSpan | "unsatisfiable" | undefined {
  if (header === undefined) return undefined;
  const equals = header.indexOf("=");
  if (equals < 0 || header.slice(0, equals).trim().toLowerCase() !== "bytes") return undefined;
  // A list may hold empty elements (RFC 9110 §5.6.1); one range is served, several are not.
  const specs = header
    .slice(equals + 1)
    .split(",")
    .map((spec) => spec.trim())
    .filter((spec) => spec !== "");
  if (specs.length !== 1) return undefined;
  const spec = specs[0] as string;
  const suffix = SUFFIX_RANGE.exec(spec);
  if (suffix !== null) {
    const length = Number(suffix[1]);
    if (length === 0) return "unsatisfiable";
    return size === 0 ? undefined : [Math.max(0, size - length), size];
  }
  const int = INT_RANGE.exec(spec);
  if (int === null) return undefined;
  const first = Number(int[1]);
  const last = int[2] === "" ? undefined : Number(int[2]);
  if (last !== undefined && last < first) return undefined; // invalid, not unsatisfiable
  if (first >= size) return "unsatisfiable";
  return [first, last === undefined ? size : Math.min(size, last + 1)];
}
