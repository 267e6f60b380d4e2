/** The pieces of an image list both forms share: one entry, its checks, and the error that points at them. */
import { FerryError, isFerryError } from "../observe/index.ts";
import { formatPlatform, parsePlatform } from "../oci/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import { TARGET_KINDS } from "../runtime/index.ts";
import type { ImageEntry } from "./types.ts";

export const TOP_KEYS = ["images", "targets"] as const;
export const ITEM_KEYS = ["image", "platform", "required"] as const;
export const HINTS = {
  images:
    "images is a list of references, or of mappings {image: REF, platform: os/arch, required: true|false}",
  targets: `targets is a list of: ${TARGET_KINDS.join(", ")}`,
  platform: "write the platform as os/arch or os/arch/variant, e.g. linux/arm64",
  required: "required is true or false",
} as const;

export interface Position {
  readonly line: number;
  readonly col: number;
}

export interface Problem {
  readonly at: Position;
  readonly key: string | undefined;
  readonly message: string;
  readonly hint: string;
}

export function entryOf(
  text: string,
  platformText: string | undefined,
  required: boolean,
  at: Position,
  key: string | undefined,
  problems: Problem[],
  platformAt: Position = at,
): ImageEntry | undefined {
  let entry: ImageEntry | undefined;
  try {
    entry = { text, ref: parseReference(text), platform: undefined, required };
  } catch (err) {
    if (!isFerryError(err)) throw err;
    problems.push({ at, key, message: err.message, hint: err.hint ?? HINTS.images });
  }
  if (platformText === undefined) return entry;
  try {
    const platform = formatPlatform(parsePlatform(platformText));
    return entry === undefined ? undefined : { ...entry, platform };
  } catch (err) {
    if (!isFerryError(err)) throw err;
    const where = key === undefined ? undefined : key.replace(/\.image$/, ".platform");
    problems.push({ at: platformAt, key: where, message: err.message, hint: HINTS.platform });
    return undefined;
  }
}

/** One entry per normalized reference: two would fight over one name in a store. */
export function addEntry(
  entry: ImageEntry,
  at: Position,
  key: string | undefined,
  seen: Map<string, number>,
  images: ImageEntry[],
  problems: Problem[],
): void {
  const name = formatReference(entry.ref);
  const first = seen.get(name);
  if (first !== undefined) {
    problems.push({
      at,
      key,
      message: `${name} is listed twice (first at line ${first})`,
      hint: "list each image once",
    });
    return;
  }
  seen.set(name, at.line);
  images.push(entry);
}

export function listInvalid(source: string, problems: readonly Problem[]): FerryError {
  const sorted = [...problems].sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col);
  const first = sorted[0] as Problem;
  const more = sorted
    .slice(1)
    .map((p) => `${p.at.line}:${p.at.col}: ${p.key === undefined ? "" : `${p.key}: `}${p.message}`);
  const suffix = more.length > 0 ? ` (and ${more.length} more)` : "";
  const key = first.key === undefined ? "" : `${first.key}: `;
  return new FerryError(
    "FERRY_CONFIG_INVALID",
    `image list ${source}:${first.at.line}:${first.at.col}: ${key}${first.message}${suffix}`,
    {
      hint: first.hint,
      fields: { path: source, line: first.at.line, column: first.at.col, key: first.key, more },
    },
  );
}
