/** Where a key path lies in a YAML document, for messages that say file:line:column. */
import type * as Yaml from "yaml";

export interface Position {
  readonly line: number;
  readonly col: number;
}

interface Located {
  readonly range?: readonly [number, number, number] | null;
}

/**
 * The position of the node at `path` (of its key, with `at: "key"`), or of
 * its nearest ancestor present in the document.
 */
export function locate(
  yaml: typeof Yaml,
  doc: Yaml.Document,
  lineCounter: Yaml.LineCounter,
  path: readonly PropertyKey[],
  at: "key" | "value",
): Position {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? 0;
  for (const [index, segment] of path.entries()) {
    const last = index === path.length - 1;
    if (yaml.isMap(node)) {
      const pair = node.items.find((item) => keyText(yaml, item.key) === String(segment));
      if (pair === undefined) break;
      const keyStart = startOf(pair.key);
      const valueStart = startOf(pair.value);
      offset = (last && at === "key" ? keyStart : (valueStart ?? keyStart)) ?? offset;
      node = pair.value;
    } else if (yaml.isSeq(node) && typeof segment === "number") {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      offset = startOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return lineCounter.linePos(offset);
}

function keyText(yaml: typeof Yaml, key: unknown): string {
  return yaml.isScalar(key) ? String(key.value) : String(key);
}

function startOf(node: unknown): number | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  return (node as Located).range?.[0];
}
