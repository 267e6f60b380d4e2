/** `bytes=a-b` / `bytes=a-` / `bytes=-n` (one range); undefined: none or several (serve it whole). */
export function parseRange(
  header: string | undefined,
  size: number,
): [number, number] | "unsatisfiable" | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  let start: number;
  let end: number;
  if (a === "") {
    if (b === "") return undefined;
    start = Math.max(0, size - Number(b));
    end = size;
  } else {
    start = Number(a);
    end = b === "" ? size : Math.min(size, Number(b) + 1);
  }
  if (start >= size || start >= end) return "unsatisfiable";
  return [start, end];
}
