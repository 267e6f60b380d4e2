import { ExitCode, type Output, processOutput, renderError } from "./output.ts";
import { closest } from "./suggest.ts";

interface CommandModule {
  usage: string;
  run(args: string[], output: Output, signal: AbortSignal): Promise<number>;
}

interface Command {
  summary: string;
  /** Loaded on use, so start-up pays only for the command that runs. */
  load(): Promise<CommandModule>;
}

const COMMANDS: Record<string, Command> = {
  pull: {
    summary: "download images into the store, verified",
    load: async () => {
      const m = await import("./commands/pull.ts");
      return { usage: m.pullUsage, run: m.pullCommand };
    },
  },
  push: {
    summary: "upload a stored image to its registry",
    load: async () => {
      const m = await import("./commands/copy.ts");
      return { usage: m.pushUsage, run: m.pushCommand };
    },
  },
  tag: {
    summary: "give a stored image another name (to push it elsewhere)",
    load: async () => {
      const m = await import("./commands/tag.ts");
      return { usage: m.tagUsage, run: m.tagCommand };
    },
  },
  copy: {
    summary: "copy an image between registries, or between a registry and the store",
    load: async () => {
      const m = await import("./commands/copy.ts");
      return { usage: m.copyUsage, run: m.copyCommand };
    },
  },
  images: {
    summary: "list stored images",
    load: async () => {
      const m = await import("./commands/images.ts");
      return { usage: m.imagesUsage, run: m.imagesCommand };
    },
  },
  inspect: {
    summary: "show a stored image's manifest, config and layers",
    load: async () => {
      const m = await import("./commands/inspect.ts");
      return { usage: m.inspectUsage, run: m.inspectCommand };
    },
  },
  mirror: {
    summary: "serve the store as a pull-through registry mirror",
    load: async () => {
      const m = await import("./commands/mirror.ts");
      return { usage: m.mirrorUsage, run: m.mirrorCommand };
    },
  },
  warm: {
    summary: "put listed images into the store, Docker or containerd (or a mirror) ahead of need",
    load: async () => {
      const m = await import("./commands/warm.ts");
      return { usage: m.warmUsage, run: m.warmCommand };
    },
  },
  check: {
    summary: "say which listed images each target holds, without pulling",
    load: async () => {
      const m = await import("./commands/check.ts");
      return { usage: m.checkUsage, run: m.checkCommand };
    },
  },
  bootstrap: {
    summary: "wait for the runtimes, warm the required images, then signal ready",
    load: async () => {
      const m = await import("./commands/bootstrap.ts");
      return { usage: m.bootstrapUsage, run: m.bootstrapCommand };
    },
  },
  agent: {
    summary: "keep listed images warm: schedule, webhooks, list reloads, /readyz, /metrics",
    load: async () => {
      const m = await import("./commands/agent.ts");
      return { usage: m.agentUsage, run: m.agentCommand };
    },
  },
  login: {
    summary: "check and save credentials for a registry",
    load: async () => {
      const m = await import("./commands/login.ts");
      return { usage: m.loginUsage, run: m.loginCommand };
    },
  },
  logout: {
    summary: "remove saved credentials for a registry",
    load: async () => {
      const m = await import("./commands/login.ts");
      return { usage: m.logoutUsage, run: m.logoutCommand };
    },
  },
  rm: {
    summary: "remove image names from the store",
    load: async () => {
      const m = await import("./commands/rm.ts");
      return { usage: m.rmUsage, run: m.rmCommand };
    },
  },
  save: {
    summary: "write stored images to a tar (OCI layout + docker load format)",
    load: async () => {
      const m = await import("./commands/save.ts");
      return { usage: m.saveUsage, run: m.saveCommand };
    },
  },
  load: {
    summary: "import images from an OCI or docker save tar, verified",
    load: async () => {
      const m = await import("./commands/load.ts");
      return { usage: m.loadUsage, run: m.loadCommand };
    },
  },
  pin: {
    summary: "protect images from pruning and eviction",
    load: async () => {
      const m = await import("./commands/pin.ts");
      return { usage: m.pinUsage, run: m.pinCommand };
    },
  },
  unpin: {
    summary: "let pruning and eviction remove images again",
    load: async () => {
      const m = await import("./commands/pin.ts");
      return { usage: m.unpinUsage, run: m.unpinCommand };
    },
  },
  prune: {
    summary: "remove unused blobs, and images by age, size or policy",
    load: async () => {
      const m = await import("./commands/prune.ts");
      return { usage: m.pruneUsage, run: m.pruneCommand };
    },
  },
  df: {
    summary: "show the store's disk usage",
    load: async () => {
      const m = await import("./commands/df.ts");
      return { usage: m.dfUsage, run: m.dfCommand };
    },
  },
  convert: {
    summary: "rewrite an image as eStargz, for lazy pulling (--estargz)",
    load: async () => {
      const m = await import("./commands/convert.ts");
      return { usage: m.convertUsage, run: m.convertCommand };
    },
  },
  lazy: {
    summary: "list or read an image's files from its registry without pulling it (eStargz)",
    load: async () => {
      const m = await import("./commands/lazy.ts");
      return { usage: m.lazyUsage, run: m.lazyCommand };
    },
  },
  mount: {
    summary: "mount an eStargz image read-only (FUSE), fetching files as they are read",
    load: async () => {
      const m = await import("./commands/mount.ts");
      return { usage: m.mountUsage, run: m.mountCommand };
    },
  },
  umount: {
    summary: "stop a ferry mount and unmount it",
    load: async () => {
      const m = await import("./commands/mount.ts");
      return { usage: m.umountUsage, run: m.umountCommand };
    },
  },
  snapshotter: {
    summary: "serve containerd's snapshots API: eStargz layers mounted lazily, others unpacked",
    load: async () => {
      const m = await import("./commands/snapshotter.ts");
      return { usage: m.snapshotterUsage, run: m.snapshotterCommand };
    },
  },
  version: {
    summary: "show the version, commit, build date, Node version and platform",
    load: async () => {
      const m = await import("./commands/version.ts");
      return { usage: m.versionUsage, run: m.versionCommand };
    },
  },
  fsck: {
    summary: "re-hash every blob; quarantine corrupt ones, list missing ones",
    load: async () => {
      const m = await import("./commands/fsck.ts");
      return { usage: m.fsckUsage, run: m.fsckCommand };
    },
  },
  completion: {
    summary: "print a shell completion script (bash, zsh, fish)",
    load: async () => {
      const m = await import("./commands/completion.ts");
      return { usage: m.completionUsage, run: m.completionCommand };
    },
  },
  man: {
    summary: "print ferry's man page (roff), made from the help text",
    load: async () => {
      const m = await import("./commands/man.ts");
      return { usage: m.manUsage, run: m.manCommand };
    },
  },
};

/** Every command with its help text, for completion scripts and the man page. */
export async function commandHelp(): Promise<
  Array<{ name: string; summary: string; usage: string }>
> {
  const entries = Object.entries(COMMANDS);
  const usages = await Promise.all(entries.map(async ([, c]) => (await c.load()).usage));
  return entries.map(([name, c], i) => ({ name, summary: c.summary, usage: usages[i] ?? "" }));
}

export { mainUsage };

function unknownCommand(name: string, output: Output): number {
  const match = closest(name, [...Object.keys(COMMANDS), "help", "--help", "--version"]);
  const hint =
    match === undefined
      ? "run `ferry --help` to list the commands"
      : `did you mean \`ferry ${match}\`? \`ferry --help\` lists the commands`;
  output.err(`ferry: unknown command "${name}"\n  hint: ${hint}\n`);
  return ExitCode.usage;
}

function mainUsage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: ferry COMMAND [options]

ferry puts container images on a machine before they are needed.

Commands:
${lines.join("\n")}

Run \`ferry COMMAND --help\` (or \`ferry help COMMAND\`) for a command's options; \`ferry -v\` for the version.
Store: --store DIR, else $FERRY_STORE, else ~/.local/share/ferry/store (/var/lib/ferry/store as root).
`;
}

export async function main(argv: string[], output: Output = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h") {
    output.out(mainUsage());
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === "help") {
    // `ferry help CMD` is `ferry CMD --help`.
    const [topic] = rest;
    if (topic === undefined) {
      output.out(mainUsage());
      return ExitCode.ok;
    }
    const entry = COMMANDS[topic];
    if (entry === undefined) return unknownCommand(topic, output);
    output.out((await entry.load()).usage);
    return ExitCode.ok;
  }
  const entry = COMMANDS[name === "--version" || name === "-v" ? "version" : name];
  if (entry === undefined) return unknownCommand(name, output);
  const command = await entry.load();
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
