import { parseArgs } from "../args.ts";
import {
  DEFAULT_RETENTION,
  type PruneReport,
  parseDuration,
  parsePercent,
  parseSize,
  prune,
  pruneRule,
  type RetentionPolicy,
  validatePolicy,
} from "../../store/index.ts";
import { openStore } from "../context.ts";
import { ExitCode, formatBytes, type Output, usageError } from "../output.ts";

export const pruneUsage = `Usage: ferry prune [options]

Remove content nothing needs: blobs no image uses, temp files of dead processes,
download leftovers untouched for a day. Pinned images and images being pulled are
never removed.

Options:
  -a, --all              also remove every tagged image (unless pinned)
  --until DURATION       remove only images not used for DURATION (30m, 48h, 7d);
                         without --keep-storage, implies --all
  --keep-storage SIZE    remove least recently used images until the store holds at
                         most SIZE (20GB, 512MiB); with --all too, it stops there
  --policy               apply the retention policy instead (what the agent runs):
    --high PERCENT         above this usage of the store's filesystem… (default ${DEFAULT_RETENTION.highPercent})
    --low PERCENT          …remove least recently used images until below this (default ${DEFAULT_RETENTION.lowPercent})
    --max-age DURATION     and remove images not used for DURATION
  --dry-run              show what would be removed; remove nothing
  --json                 print one JSON object
  --store DIR            store directory
`;

export async function pruneCommand(args: string[], output: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      all: { type: "boolean", short: "a" },
      until: { type: "string" },
      "keep-storage": { type: "string" },
      policy: { type: "boolean" },
      high: { type: "string" },
      low: { type: "string" },
      "max-age": { type: "string" },
      "dry-run": { type: "boolean" },
      json: { type: "boolean" },
      store: { type: "string" },
    },
  });
  if (positionals.length > 0) {
    throw usageError(
      `prune takes no image references (got "${positionals[0]}")`,
      "remove names with `ferry rm REF`, then `ferry prune` reclaims their blobs",
    );
  }
  const now = Date.now();
  let policy: RetentionPolicy | undefined;
  if (values.policy) {
    if (values.all || values.until !== undefined || values["keep-storage"] !== undefined) {
      throw usageError(
        "--policy decides what to remove itself: drop --all, --until and --keep-storage",
      );
    }
    policy = {
      highPercent:
        values.high === undefined
          ? DEFAULT_RETENTION.highPercent
          : parsePercent(values.high, "--high"),
      lowPercent:
        values.low === undefined ? DEFAULT_RETENTION.lowPercent : parsePercent(values.low, "--low"),
      maxAgeMs:
        values["max-age"] === undefined ? undefined : parseDuration(values["max-age"], "--max-age"),
    };
    validatePolicy(policy);
  } else if (
    values.high !== undefined ||
    values.low !== undefined ||
    values["max-age"] !== undefined
  ) {
    throw usageError(
      "--high, --low and --max-age go with --policy",
      "e.g. `ferry prune --policy --high 85 --low 80`",
    );
  }
  const rule = pruneRule(
    {
      all: values.all === true,
      ...(values.until === undefined ? {} : { untilMs: parseDuration(values.until, "--until") }),
      ...(values["keep-storage"] === undefined
        ? {}
        : { keepBytes: parseSize(values["keep-storage"], "--keep-storage") }),
    },
    now,
  );
  const store = await openStore(values);
  const report = await prune(store, {
    ...(policy === undefined ? { rule } : { policy }),
    dryRun: values["dry-run"] === true,
    now,
  });
  if (values.json) output.out(`${JSON.stringify(report, null, 2)}\n`);
  else output.out(renderPrune(report));
  return ExitCode.ok;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function renderPrune(r: PruneReport): string {
  const lines: string[] = [];
  if (r.policy !== undefined) {
    const p = r.policy;
    lines.push(
      `store filesystem ${p.usagePercent}% used (${formatBytes(p.filesystem.available)} free)` +
        (p.overHigh
          ? `: above the high watermark, freeing at least ${formatBytes(p.bytesToFree)}`
          : ": below the high watermark"),
    );
  }
  for (const image of r.images) {
    lines.push(
      `${r.dryRun ? "would untag" : "untagged"}: ${image.reference} (${plural(image.blobs, "blob")}, ${formatBytes(image.bytes)})`,
    );
  }
  const stale = r.staleFiles.count > 0 ? `, ${plural(r.staleFiles.count, "stale file")}` : "";
  lines.push(`${r.dryRun ? "would delete" : "deleted"} ${plural(r.blobs.count, "blob")}${stale}`);
  lines.push(
    r.dryRun
      ? `Total reclaimable space: ${formatBytes(r.reclaimedBytes)} (dry run: nothing was removed)`
      : `Total reclaimed space: ${formatBytes(r.reclaimedBytes)}`,
  );
  return `${lines.join("\n")}\n`;
}
