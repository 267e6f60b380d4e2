import assert from "node:assert/strict";
import { test } from "node:test";
import { nodeStatus } from "../prepull.ts";
import { nodeProgress, type NodeStatus, type PrePullObject } from "./prepull.ts";

const now = new Date("2026-01-01T00:00:00Z");
const rollout = (nodes?: Record<string, NodeStatus>): PrePullObject => ({
  metadata: { name: "web-dp-1a2b", namespace: "apps" },
  spec: { images: ["reg/web:2"] },
  ...(nodes === undefined ? {} : { status: { nodes } }),
});
const present = (image: string) => nodeStatus([{ image, state: "present" }], now);
const pulling = (image: string) => nodeStatus([{ image, state: "pulling" }], now);

test("a node's rollout progress from its NodeImages report", () => {
  const reports = new Map([
    ["node-a", present("reg/web:2")],
    ["node-b", pulling("reg/web:2")],
  ]);
  const report = (node: string) => reports.get(node);
  assert.equal(nodeProgress(rollout(), "node-a", report), "complete");
  assert.equal(nodeProgress(rollout(), "node-b", report), "pending");
  assert.equal(nodeProgress(rollout(), "node-c", report), "pending");
});

test("a previous version's entry in status.nodes counts when the NodeImages report does not name the images", () => {
  const prepull = rollout({ "node-old": present("reg/web:2") });
  // A NodeImages status written before the grant reached the node's spec.
  const report = () => present("reg/other:1");
  assert.equal(nodeProgress(prepull, "node-old", report), "complete");
  assert.equal(nodeProgress(prepull, "node-old"), "complete");
});
