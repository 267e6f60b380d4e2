/**
 * `npm run bench:kube`: the Kubernetes scale run (test/fixtures/kube-scale.ts) for N node
 * agents (BENCH_NODES, default 10,100,1000), one required PrePull for every node, then a
 * DaemonSet rollout to every node (its rollout PrePull through the NodeImages, nodeimages only);
 * BENCH_REPORT=prepull runs the agents the previous version's way (every PrePull watched) for
 * comparison. Reports per node the API server's watch and list bytes and writes, the
 * conflicts, and the times until every node reported present and until the aggregate said N/N
 * (the taints are checked gone too, but the agents start before the PrePull exists, so when
 * they went is not a measure of the taint path). Not a test: it asserts nothing.
 */
import { runKubeScale } from "../test/fixtures/kube-scale.ts";

import type { ReportMode } from "../src/kube/index.ts";

const SIZES = (process.env.BENCH_NODES ?? "10,100,1000").split(",").map(Number);
/** prepull: the previous version's agents (every PrePull watched), for the before column */
const REPORT = (process.env.BENCH_REPORT ?? "nodeimages") as ReportMode;
const kib = (bytes: number) => (bytes / 1024).toFixed(1);

const rows: string[] = [
  "| N | watch KiB/node | max watch KiB | list KiB/node | writes/node | conflicts | controller writes | reported s | aggregate s | rollout N/N s |",
  "|---|---|---|---|---|---|---|---|---|---|",
];
for (const nodes of SIZES) {
  const r = await runKubeScale({
    nodes,
    report: REPORT,
    timeoutMs: 20 * 60_000,
    log: (line) => console.error(`[N=${nodes}] ${line}`),
  });
  const row = `| ${nodes} | ${kib(r.perNode.watchBytes)} | ${kib(r.maxWatchBytes)} | ${kib(r.perNode.listBytes)} | ${r.perNode.writes.toFixed(2)} | ${r.conflicts} | ${r.controller.writes} | ${r.reportedSeconds.toFixed(1)} | ${r.aggregateSeconds.toFixed(1)} | ${r.rolloutSeconds.toFixed(1)} |`;
  console.error(row);
  rows.push(row);
}
console.log(rows.join("\n"));
