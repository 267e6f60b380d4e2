/**
 * The options a command's help text offers, in order, each once, and --help: those on its
 * Usage line and at the start of its option lines ("  -q, --quiet   …"); options named in
 * prose (`ferry df -v`) belong to other commands.
 */
export function optionsInUsage(usage: string): string[] {
  const found = new Set<string>();
  for (const line of usage.split("\n")) {
    const offered = line.startsWith("Usage:")
      ? line
      : /^ {1,4}-/.test(line) // deeper is a description's continuation
        ? (line.trimStart().split(/\s{2,}/)[0] ?? "")
        : "";
    // An option stands alone: not inside a word ("multi-platform") nor after another dash.
    for (const match of offered.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])/g))
      found.add(match[1] as string);
  }
  found.add("--help");
  return [...found];
}
