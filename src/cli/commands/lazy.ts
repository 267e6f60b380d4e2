import { parseArgs } from "../args.ts";
import { type ImageEntry, LazyImage, type LayerStats } from "../../lazy/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import { parseReference } from "../../reference/index.ts";
import { createRegistryClient } from "../context.ts";
import { ExitCode, formatBytes, type Output, usageError } from "../output.ts";
import { stdout } from "../stdio.ts";

export const lazyUsage = `Usage: ferry lazy ls REF [PATH] [options]
       ferry lazy cat REF PATH [options]

Read an image's files straight from its registry without pulling it. For
eStargz layers only the table of contents and the chunks of the files read are
fetched (byte ranges, each chunk verified); plain layers are streamed whole.

Options:
  -R, --recursive               ls: list everything below PATH
  --stats                       print bytes fetched against layer sizes to stderr
  --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image (default: this host's)
  --config FILE                 ferry config file (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml)
`;

export async function lazyCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      recursive: { type: "boolean", short: "R" },
      stats: { type: "boolean" },
      platform: { type: "string" },
      config: { type: "string" },
    },
  });
  const [verb, input, path] = positionals;
  if (verb !== "ls" && verb !== "cat")
    throw usageError(
      `lazy needs ls or cat, got ${verb === undefined ? "nothing" : `"${verb}"`}`,
      "e.g. `ferry lazy ls alpine:3.20 /etc`",
    );
  if (input === undefined) throw usageError(`lazy ${verb} needs an image reference`);
  if (verb === "cat" && path === undefined)
    throw usageError(
      "lazy cat needs a file path",
      "e.g. `ferry lazy cat alpine:3.20 /etc/os-release`",
    );
  if (positionals.length > 3) throw usageError(`lazy ${verb}: too many arguments`);
  const ref = parseReference(input);
  const registry = createRegistryClient({ config: values.config, output });
  try {
    const image = await LazyImage.open({
      registry,
      repository: { domain: ref.domain, path: ref.path },
      reference: ref.digest ?? ref.tag ?? "",
      platform: values.platform === undefined ? undefined : parsePlatform(values.platform),
      signal,
    });
    try {
      if (verb === "ls") {
        const entries = await image.list(path ?? "", { recursive: values.recursive === true });
        output.out(entries.map(formatEntry).join(""));
      } else {
        for await (const piece of image.read(path ?? ""))
          await stdout.writeBytes(piece, path ?? "");
      }
    } finally {
      if (values.stats) output.err(formatStats(image.stats()));
    }
  } finally {
    await registry.close();
  }
  return ExitCode.ok;
}

const TYPE_CHAR: Record<ImageEntry["type"], string> = {
  dir: "d",
  reg: "-",
  symlink: "l",
  hardlink: "-",
  char: "c",
  block: "b",
  fifo: "p",
};

function modeString(entry: ImageEntry): string {
  const bits = "rwxrwxrwx";
  let s = TYPE_CHAR[entry.type];
  for (let i = 0; i < 9; i++) s += entry.mode & (1 << (8 - i)) ? bits[i] : "-";
  return s;
}

/** One `ls -l`-like line: mode, owner, size, path, link target. */
function formatEntry(entry: ImageEntry): string {
  const link =
    entry.type === "symlink"
      ? ` -> ${entry.linkName}`
      : entry.type === "hardlink"
        ? ` link to /${entry.linkName}`
        : "";
  return `${modeString(entry)} ${`${entry.uid}/${entry.gid}`.padEnd(9)} ${String(entry.size).padStart(10)} /${entry.path}${link}\n`;
}

function formatStats(stats: LayerStats[]): string {
  const fetched = stats.reduce((n, s) => n + s.fetched, 0);
  const total = stats.reduce((n, s) => n + s.size, 0);
  const lines = stats.map(
    (s) =>
      `  ${s.digest.slice(0, 19)}  ${s.lazy ? "eStargz" : "not lazy (plain layer, streamed whole)"}  fetched ${s.fetched} of ${s.size} bytes\n`,
  );
  return `fetched ${fetched} of ${total} layer bytes (${formatBytes(fetched)} of ${formatBytes(total)})\n${lines.join("")}`;
}
