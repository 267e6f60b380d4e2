import { optionsInUsage } from "./help-options.ts";

export interface CommandHelp {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
}

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

/** Words a command's first argument can be, beyond files: `help CMD`, `completion SHELL`. */
function argumentWords(name: string, commands: readonly CommandHelp[]): string[] {
  if (name === "help") return commands.map((c) => c.name);
  if (name === "completion") return [...SHELLS];
  return [];
}

function withHelp(commands: readonly CommandHelp[]): CommandHelp[] {
  return [...commands, { name: "help", summary: "show a command's options", usage: "" }];
}

export function completionScript(shell: Shell, commands: readonly CommandHelp[]): string {
  const all = withHelp(commands);
  if (shell === "bash") return bash(all);
  if (shell === "zsh") return zsh(all);
  return fish(all);
}

function bash(commands: readonly CommandHelp[]): string {
  const cases = commands.map(
    (c) =>
      `    ${c.name}) opts="${optionsInUsage(c.usage).join(" ")}" args="${argumentWords(c.name, commands).join(" ")}" ;;`,
  );
  return `# bash completion for ferry: source it, or put it in /etc/bash_completion.d/ferry
_ferry() {
  local cur=\${COMP_WORDS[COMP_CWORD]} opts args
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${commands.map((c) => c.name).join(" ")} --help --version" -- "$cur"))
    return
  fi
  case \${COMP_WORDS[1]} in
${cases.join("\n")}
    *) opts="" args="" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  elif [[ -n $args ]]; then
    COMPREPLY=($(compgen -W "$args" -- "$cur"))
  else
    COMPREPLY=()
  fi
}
# -o default: arguments that are not options complete as file names.
complete -o default -F _ferry ferry
`;
}

/** `name:description` for _describe: a colon in the name would end it; the summary may hold one. */
const zshEntry = (name: string, summary: string) =>
  `'${name.replaceAll(":", "\\:")}:${summary.replaceAll("'", "'\\''")}'`;

function zsh(commands: readonly CommandHelp[]): string {
  const described = commands.map((c) => `    ${zshEntry(c.name, c.summary)}`);
  const cases = commands.map(
    (c) =>
      `    (${c.name}) opts=(${optionsInUsage(c.usage).join(" ")}) args=(${argumentWords(c.name, commands).join(" ")}) ;;`,
  );
  return `#compdef ferry
# zsh completion for ferry: save as _ferry in a directory of $fpath
_ferry() {
  local -a commands opts args
  commands=(
${described.join("\n")}
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  case $words[2] in
${cases.join("\n")}
  esac
  if [[ $PREFIX == -* ]]; then
    compadd -a opts
  elif (( $#args )); then
    compadd -a args
  else
    _files
  fi
}
_ferry "$@"
`;
}

const fishQuote = (text: string) => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

function fish(commands: readonly CommandHelp[]): string {
  const lines = [
    "# fish completion for ferry: save as ~/.config/fish/completions/ferry.fish",
    "complete -c ferry -f",
  ];
  for (const c of commands) {
    lines.push(
      `complete -c ferry -n __fish_use_subcommand -a ${c.name} -d ${fishQuote(c.summary)}`,
    );
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    for (const option of optionsInUsage(c.usage)) {
      const flag = option.startsWith("--") ? `-l ${option.slice(2)}` : `-s ${option.slice(1)}`;
      lines.push(`complete -c ferry ${when} ${flag}`);
    }
    const words = argumentWords(c.name, commands);
    if (words.length > 0) lines.push(`complete -c ferry ${when} -a ${fishQuote(words.join(" "))}`);
    else lines.push(`complete -c ferry ${when} -F`);
  }
  return `${lines.join("\n")}\n`;
}
