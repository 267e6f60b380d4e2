/**
 * Image lists (images.yaml): which images a machine should hold, where. YAML
 * (`images:` of references or {image, platform, required} mappings, optional
 * `targets:`), or plain text: one reference per line, `#` comments. Every
 * mistake is reported at file:line:column with its key.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import { FerryError } from "../observe/index.ts";
import { parseReference } from "../reference/index.ts";
import { addEntry, entryOf, listInvalid, type Problem } from "./image-list-entry.ts";
import { YamlListReader } from "./image-list-yaml.ts";
import type { ImageEntry, ImageList } from "./types.ts";

// yaml is loaded on first use: commands that take no list do not pay for it.
const require = createRequire(import.meta.url);

export async function loadImageList(path: string): Promise<ImageList> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const missing = code === "ENOENT" || code === "ENOTDIR";
    throw new FerryError(
      missing ? "FERRY_CONFIG_NOT_FOUND" : "FERRY_CONFIG_INVALID",
      missing ? `image list ${path} does not exist` : `cannot read image list ${path} (${code})`,
      {
        hint: missing ? "check the path given with -f" : "check the file's permissions",
        fields: { path },
        cause: err,
      },
    );
  }
  return parseImageList(path, text);
}

/** YAML when the file is a YAML mapping or sequence (or names `images:`), else one reference per line. */
export function parseImageList(source: string, text: string): ImageList {
  const yaml = require("yaml") as typeof Yaml;
  const lineCounter = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter, prettyErrors: false });
  const contents = doc.contents;
  const looksYaml = /^images\s*:/m.test(text) || yaml.isMap(contents) || yaml.isSeq(contents);
  if (!looksYaml) return parseTextList(source, text);
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const at = lineCounter.linePos(syntax.pos[0]);
    throw listInvalid(source, [
      {
        at,
        key: undefined,
        message: `not valid YAML: ${syntax.message}`,
        hint: "fix the YAML syntax at that position",
      },
    ]);
  }
  return new YamlListReader(yaml, doc, lineCounter, source).read();
}

/** References given on a command line: required, the target's own platform. */
export function entriesFromReferences(texts: readonly string[]): ImageEntry[] {
  return texts.map((text) => ({
    text,
    ref: parseReference(text),
    platform: undefined,
    required: true,
  }));
}

function parseTextList(source: string, text: string): ImageList {
  const problems: Problem[] = [];
  const images: ImageEntry[] = [];
  const seen = new Map<string, number>();
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*/, "").trimEnd();
    const body = line.trim();
    if (body === "") continue;
    const at = { line: index + 1, col: line.length - line.trimStart().length + 1 };
    const entry = entryOf(body, undefined, true, at, undefined, problems);
    if (entry !== undefined) addEntry(entry, at, undefined, seen, images, problems);
  }
  if (problems.length > 0) throw listInvalid(source, problems);
  return { images, targets: undefined, source };
}
