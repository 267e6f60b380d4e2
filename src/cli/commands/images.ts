import { parseArgs } from "../args.ts";
import { familiarName, parseReference } from "../../reference/index.ts";
import { openStore } from "../context.ts";
import { imageSize, readImageManifest } from "../local.ts";
import { ExitCode, formatBytes, type Output } from "../output.ts";

export const imagesUsage = `Usage: ferry images [--json] [--store DIR]

List the images in the store: reference, digest, size and when they were pulled;
a PINNED column appears when some image is pinned (\`ferry pin\`). --json adds
\`pinned\` and \`lastUsedAt\` (the last pull or use; pruning goes by it).
`;

export async function imagesCommand(args: string[], output: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { json: { type: "boolean" }, store: { type: "string" } },
  });
  const store = await openStore(values);
  const rows = [];
  for (const record of await store.images()) {
    const manifest = await readImageManifest(store, record);
    rows.push({
      reference: record.reference,
      digest: record.sourceDigest,
      manifestDigest: record.descriptor.digest,
      platform: record.descriptor.platform,
      size: imageSize(manifest),
      pulledAt: record.pulledAt,
      lastUsedAt: (await store.lastUsedAt(record))?.toISOString(),
      pinned: record.pinned,
    });
  }
  rows.sort((a, b) => a.reference.localeCompare(b.reference));
  if (values.json) {
    output.out(`${JSON.stringify(rows, null, 2)}\n`);
    return ExitCode.ok;
  }
  // The column shows only when it says something, so the usual table keeps its shape.
  const anyPinned = rows.some((r) => r.pinned);
  const table = [
    ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED", ...(anyPinned ? ["PINNED"] : [])],
  ];
  for (const r of rows) {
    const ref = parseReference(r.reference);
    const repo = familiarName({ ...ref, tag: undefined, digest: undefined });
    table.push([
      repo,
      ref.tag ?? "<none>",
      r.digest.slice(0, 19),
      formatBytes(r.size),
      r.pulledAt ?? "",
      ...(anyPinned ? [r.pinned ? "pinned" : ""] : []),
    ]);
  }
  const widths =
    table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? "").length))) ?? [];
  for (const row of table)
    output.out(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("   ")
        .trimEnd()}\n`,
    );
  return ExitCode.ok;
}
