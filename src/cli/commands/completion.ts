import { parseArgs } from "../args.ts";
import { completionScript, SHELLS, type Shell } from "../completion-scripts.ts";
import { commandHelp } from "../main.ts";
import { ExitCode, type Output, usageError } from "../output.ts";

export const completionUsage = `Usage: ferry completion bash|zsh|fish

Print a completion script for the shell: commands, each command's options (from the same
help text \`ferry COMMAND --help\` prints), and file names for the other arguments.

  bash   source <(ferry completion bash)      # or save it in /etc/bash_completion.d/ferry
  zsh    ferry completion zsh > "\${fpath[1]}/_ferry"
  fish   ferry completion fish > ~/.config/fish/completions/ferry.fish
`;

export async function completionCommand(args: string[], output: Output): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const [shell] = positionals;
  if (positionals.length !== 1 || !SHELLS.includes(shell as Shell))
    throw usageError(
      `completion takes one shell: ${SHELLS.join(", ")}${shell === undefined ? "" : ` (not "${positionals.join(" ")}")`}`,
      "e.g. `source <(ferry completion bash)`",
    );
  output.out(completionScript(shell as Shell, await commandHelp()));
  return ExitCode.ok;
}
