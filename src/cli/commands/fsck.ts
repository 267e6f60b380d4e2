import { parseArgs } from "../args.ts";
import { checkStore, type FsckReport } from "../../store/index.ts";
import { openStore } from "../context.ts";
import { ExitCode, formatBytes, type Output } from "../output.ts";

export const fsckUsage = `Usage: ferry fsck [--json] [--store DIR]

Check the store: re-hash every blob, move those whose content does not match their
digest to ferry/quarantine/ inside the store, and list blobs that stored images need
but the store lacks. Exits 6 if anything was wrong (pull the broken images again), 0 if not.

Options:
  --json        print one JSON object
  --store DIR   store directory
`;

export async function fsckCommand(args: string[], output: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: "boolean" }, store: { type: "string" } },
  });
  const report = await checkStore(await openStore(values));
  if (values.json) output.out(`${JSON.stringify(report, null, 2)}\n`);
  else output.out(renderFsck(report));
  if (report.ok) return ExitCode.ok;
  if (!values.json) {
    const pulls = report.brokenImages.map((r) => `ferry pull ${r}`).join("; ");
    output.err(
      `ferry: the store has ${report.corrupt.length} corrupt and ${report.missing.length} missing blobs\n` +
        `  hint: ${pulls === "" ? "no stored image needs them; the quarantined copies may be deleted" : `pull the broken images again: ${pulls}`}\n`,
    );
  }
  return ExitCode.integrity;
}

function neededBy(images: readonly string[]): string {
  return images.length === 0 ? "no stored image uses it" : `needed by ${images.join(", ")}`;
}

export function renderFsck(r: FsckReport): string {
  const lines = [`checked ${r.blobsChecked} blobs (${formatBytes(r.bytesChecked)})`];
  for (const c of r.corrupt) {
    lines.push(
      `corrupt: ${c.digest} hashes to ${c.actual}; moved to ${c.quarantinedTo}; ${neededBy(c.images)}`,
    );
  }
  for (const m of r.missing) lines.push(`missing: ${m.digest}; ${neededBy(m.images)}`);
  if (r.brokenImages.length > 0) lines.push(`broken images: ${r.brokenImages.join(", ")}`);
  if (r.ok) lines.push("no problems found");
  return `${lines.join("\n")}\n`;
}
