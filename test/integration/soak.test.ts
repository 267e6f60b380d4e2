// The short soak (CI): `ferry agent` warming a real containerd through a `ferry mirror` and the
// mirror serving ferry and skopeo clients, while the registry is killed and restarted, the
// stores' tmpfs filled and freed, containerd restarted, the image list edited and webhooks
// arrive; then every check of test/fixtures/soak. `npm run soak` is the long form.
// SOAK_TEST_LOG=1 prints progress as it runs; SOAK_TEST_LOG_DIR=DIR keeps the daemons' logs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatReport } from "../fixtures/soak/report.ts";
import { runSoak } from "../fixtures/soak/run.ts";
import { FAULT_KINDS } from "../fixtures/soak/schedule.ts";

test("soak: registry restarts, a full disk, containerd restarts, list edits and webhooks; everything converges, verified, nothing leaked", {
  timeout: 600_000,
}, async (t) => {
  const report = await runSoak({
    durationMs: 30_000,
    holdMs: 2_500,
    convergeMs: 60_000,
    diskBytes: 48 * 2 ** 20,
    sampleMs: 500,
    logDir: process.env.SOAK_TEST_LOG_DIR,
    progress: process.env.SOAK_TEST_LOG ? (line) => process.stderr.write(`${line}\n`) : undefined,
  });
  for (const line of formatReport(report).split("\n")) t.diagnostic(line);
  const ran = new Set(report.faults.filter((f) => f.error === undefined).map((f) => f.kind));
  assert.deepEqual(
    FAULT_KINDS.filter((k) => !ran.has(k)),
    [],
    "every kind of fault was injected",
  );
  const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
  assert.deepEqual(failed, [], "every soak check passes");
  assert.ok(report.checks.length >= 20, "the checks ran");
});
