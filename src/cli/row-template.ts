import { usageError } from "./output.ts";

/**
 * A `--format` template as Docker's are written: `{{.Field}}` placeholders in text, `\t` and
 * `\n` as a tab and a newline. Compiled once, so a wrong field fails before any row prints.
 */
export function compileRowTemplate(
  template: string,
  fields: readonly string[],
): (row: Readonly<Record<string, string>>) => string {
  const text = template.replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  const parts: Array<{ literal: string } | { field: string }> = [];
  const placeholder = /\{\{\s*(.*?)\s*\}\}/g;
  let last = 0;
  for (const match of text.matchAll(placeholder)) {
    parts.push({ literal: text.slice(last, match.index) });
    const name = /^\.([A-Za-z]+)$/.exec(match[1] ?? "")?.[1];
    if (name === undefined || !fields.includes(name)) {
      throw usageError(
        `--format: unknown placeholder {{${match[1]}}}`,
        `the fields are ${fields.map((f) => `{{.${f}}}`).join(" ")}, or --format json`,
      );
    }
    parts.push({ field: name });
    last = match.index + match[0].length;
  }
  parts.push({ literal: text.slice(last) });
  return (row) => parts.map((p) => ("literal" in p ? p.literal : (row[p.field] ?? ""))).join("");
}
