/**
 * `npm run soak`: the long soak. `ferry agent` warming a real containerd (CRI, pulling through
 * a `ferry mirror`) and the mirror serving ferry and skopeo clients, while the registry is
 * killed and restarted, the stores' tmpfs filled and freed, containerd restarted, the image
 * list edited and webhooks arrive, on a fixed schedule; then a bounded quiet period and the
 * checks (images in place, blobs verified, fsck, ingest, descriptors, memory). Prints the report;
 * exits 1 if a check failed. Needs root (tmpfs) and the real services (npm run services install).
 *
 *   npm run soak -- [--duration 5m] [--hold 8s] [--converge 3m] [--disk 128] [--log-dir DIR]
 *   SOAK_DURATION=20m npm run soak
 */
import { parseArgs } from "node:util";
import { formatReport } from "../test/fixtures/soak/report.ts";
import { runSoak } from "../test/fixtures/soak/run.ts";
import { parseDuration } from "../src/store/index.ts";

const USAGE =
  "usage: npm run soak -- [--duration 5m] [--hold 8s] [--converge 3m] [--disk MiB] [--sample 1s] [--log-dir DIR] [--quiet]";

function parseFlags() {
  try {
    return parseArgs({
      options: {
        duration: { type: "string", default: process.env.SOAK_DURATION ?? "5m" },
        hold: { type: "string", default: process.env.SOAK_HOLD ?? "8s" },
        converge: { type: "string", default: process.env.SOAK_CONVERGE ?? "3m" },
        disk: { type: "string", default: process.env.SOAK_DISK_MIB ?? "128" },
        sample: { type: "string", default: "1s" },
        "log-dir": { type: "string", default: process.env.SOAK_LOG_DIR },
        quiet: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

const values = parseFlags();

const diskMiB = Number(values.disk.replace(/MiB$/i, ""));
if (!Number.isInteger(diskMiB) || diskMiB < 16) {
  process.stderr.write(
    `soak: --disk is a whole number of MiB, at least 16, got "${values.disk}"\n`,
  );
  process.exit(2);
}
let options: Parameters<typeof runSoak>[0];
try {
  options = {
    durationMs: parseDuration(values.duration, "--duration"),
    holdMs: parseDuration(values.hold, "--hold"),
    convergeMs: parseDuration(values.converge, "--converge"),
    diskBytes: diskMiB * 2 ** 20,
    sampleMs: parseDuration(values.sample, "--sample"),
    logDir: values["log-dir"],
    progress: values.quiet ? undefined : (line) => process.stderr.write(`${line}\n`),
  };
} catch (err) {
  process.stderr.write(`soak: ${(err as Error).message}\n`);
  process.exit(2);
}
// Ctrl-C: exit, and the fixtures' exit hooks kill the daemons and unmount the tmpfs.
process.once("SIGINT", () => process.exit(130));

const report = await runSoak(options);
process.stdout.write(`${formatReport(report)}\n`);
process.exitCode = report.checks.every((c) => c.ok) ? 0 : 1;
