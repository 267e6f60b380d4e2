import { parseArgs } from "../args.ts";
import { type DiskUsage, diskUsage } from "../../store/index.ts";
import { openStore } from "../context.ts";
import { ExitCode, formatBytes, type Output } from "../output.ts";
import { alignColumns } from "../table.ts";

export const dfUsage = `Usage: ferry df [-v] [--json] [--store DIR]

Show the store's disk usage: its size (each blob once, however many images share it),
what \`ferry prune\` would reclaim, and the number of images; partial downloads (interrupted,
or of pulls running now) on a line of their own.

Options:
  -v, --verbose   per image: size, size shared with other images, size only it uses
  --json          print one JSON object (always with the per-image list)
  --store DIR     store directory
`;

export async function dfCommand(args: string[], output: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      verbose: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      store: { type: "string" },
    },
  });
  const usage = await diskUsage(await openStore(values));
  if (values.json) {
    output.out(`${JSON.stringify(usage, null, 2)}\n`);
    return ExitCode.ok;
  }
  output.out(renderDf(usage, values.verbose === true));
  return ExitCode.ok;
}

function percentOf(part: number, whole: number): string {
  return whole > 0 ? `${Math.round((part * 100) / whole)}%` : "0%";
}

export function renderDf(usage: DiskUsage, verbose: boolean): string {
  const summary = [
    ["IMAGES", "BLOBS", "SIZE", "RECLAIMABLE"],
    [
      String(usage.imageCount),
      String(usage.blobCount),
      formatBytes(usage.bytes),
      `${formatBytes(usage.reclaimableBytes)} (${percentOf(usage.reclaimableBytes, usage.bytes + usage.partials.bytes)})`,
    ],
  ];
  let text = alignColumns(summary);
  if (usage.partials.count > 0) {
    text += `Partial downloads: ${usage.partials.count} (${formatBytes(usage.partials.bytes)}), not counted in SIZE; \`ferry prune\` removes those no running pull holds\n`;
  }
  if (verbose && usage.images.length > 0) {
    const rows = [["REFERENCE", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "PINNED", "LAST USED"]];
    const images = [...usage.images].sort((a, b) => a.reference.localeCompare(b.reference));
    for (const i of images) {
      rows.push([
        i.reference,
        formatBytes(i.bytes),
        formatBytes(i.sharedBytes),
        formatBytes(i.uniqueBytes),
        i.pinned ? "yes" : "no",
        i.lastUsedAt ?? "",
      ]);
    }
    text += `\n${alignColumns(rows)}`;
  }
  return text;
}
