import { parseArgs } from "../args.ts";
import { buildInfo } from "../build-info.ts";
import { commandHelp, mainUsage } from "../main.ts";
import { manPage } from "../man-page.ts";
import { ExitCode, type Output } from "../output.ts";

export const manUsage = `Usage: ferry man

Print ferry's man page (roff), made from the help texts the commands print:
  ferry man > /usr/local/share/man/man1/ferry.1     # then: man ferry
  ferry man | man -l -                              # read it now
`;

export async function manCommand(args: string[], output: Output): Promise<number> {
  parseArgs({ args, options: {} });
  output.out(manPage(buildInfo().version, mainUsage(), await commandHelp()));
  return ExitCode.ok;
}
