import { imagesCommand, imagesUsage } from "./commands/images.ts";
import { inspectCommand, inspectUsage } from "./commands/inspect.ts";
import { pullCommand, pullUsage } from "./commands/pull.ts";
import { rmCommand, rmUsage } from "./commands/rm.ts";
import { ExitCode, type Output, processOutput, renderError } from "./output.ts";

const VERSION = "0.1.0";

interface Command {
  usage: string;
  summary: string;
  run(args: string[], output: Output, signal: AbortSignal): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  pull: { usage: pullUsage, summary: "download images into the store, verified", run: pullCommand },
  images: { usage: imagesUsage, summary: "list stored images", run: imagesCommand },
  inspect: {
    usage: inspectUsage,
    summary: "show a stored image's manifest, config and layers",
    run: inspectCommand,
  },
  rm: { usage: rmUsage, summary: "remove image names from the store", run: rmCommand },
};

function mainUsage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: ferry COMMAND [options]

ferry puts container images on a machine before they are needed.

Commands:
${lines.join("\n")}

Run \`ferry COMMAND --help\` for a command's options.
Store: --store DIR, else $FERRY_STORE, else ~/.local/share/ferry/store (/var/lib/ferry/store as root).
`;
}

export async function main(argv: string[], output: Output = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    output.out(mainUsage());
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === "--version" || name === "version") {
    output.out(`ferry ${VERSION}\n`);
    return ExitCode.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    output.err(
      `ferry: unknown command "${name}"\n  hint: run \`ferry --help\` to list the commands\n`,
    );
    return ExitCode.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    output.out(command.usage);
    return ExitCode.ok;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await command.run(rest, output, controller.signal);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      output.err(
        `ferry ${name}: ${(err as Error).message}\n  hint: run \`ferry ${name} --help\`\n`,
      );
      return ExitCode.usage;
    }
    return renderError(err, output);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
