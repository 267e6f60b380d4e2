import type { CommandHelp } from "./completion-scripts.ts";

/** Text as roff reads it literally: backslashes escaped, no line taken for a request. */
function roffText(text: string): string {
  return text
    .split("\n")
    .map((line) => {
      const escaped = line
        .replaceAll("\\", "\\e")
        .replaceAll("-", "\\-")
        // Beyond ASCII by code point, so no preconv is needed (→ is \[u2192]).
        .replace(
          /[^\p{ASCII}]/gu,
          (c) => `\\[u${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}]`,
        );
      return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
    })
    .join("\n");
}

/** ferry(1): the main help, then each command's own help text verbatim. */
export function manPage(
  version: string,
  mainUsage: string,
  commands: readonly CommandHelp[],
): string {
  const sections = commands.map(
    (c) => `.SS ${roffText(`ferry ${c.name}`)}
${roffText(c.summary)}.
.PP
.nf
${roffText(c.usage.trimEnd())}
.fi`,
  );
  return `.TH FERRY 1 "" "ferry ${version}" "User Commands"
.SH NAME
ferry \\- put container images on a machine before they are needed
.SH SYNOPSIS
.B ferry
.I COMMAND
[options]
.SH DESCRIPTION
.nf
${roffText(mainUsage.trimEnd())}
.fi
.SH COMMANDS
${sections.join("\n")}
.SH SEE ALSO
.BR docker (1),
.BR ctr (8)
`;
}
