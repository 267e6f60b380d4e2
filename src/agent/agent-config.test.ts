import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { TARGET_KINDS } from "../runtime/index.ts";
import { parseAgentSettings } from "./agent-config.ts";
import { parseImageList } from "./image-list.ts";

const deploy = (name: string) => new URL(`../../deploy/${name}`, import.meta.url);

describe("agent.yaml", () => {
  it("takes every target kind an image list takes: both read the one list of kinds", () => {
    const all = `[${TARGET_KINDS.join(", ")}]`;
    assert.deepEqual(parseAgentSettings("agent.yaml", `targets: ${all}\n`).targets, TARGET_KINDS);
    const list = parseImageList("images.yaml", `images: [postgres:16]\ntargets: ${all}\n`);
    assert.deepEqual(list.targets, TARGET_KINDS);
  });

  it("reads every setting; paths are relative to the file", () => {
    const settings = parseAgentSettings(
      "/etc/ferry/agent.yaml",
      `images: images.yaml
targets: [containerd, store]
listen: 127.0.0.1:8080
schedule: "*/30 * * * *"
jitter: 30s
grace: 5s
concurrency: 6
store: /var/lib/ferry/store
webhooks:
  secretFile: webhook-secret
  allow: [registry.example.com/team]
  registryHost: registry.example.com
policy:
  schedule: "0 * * * *"
  high: 90
  low: 70
  maxAge: 30d
`,
    );
    assert.deepEqual(settings, {
      listFile: "/etc/ferry/images.yaml",
      targets: ["containerd", "store"],
      listen: "127.0.0.1:8080",
      schedule: "*/30 * * * *",
      jitterMs: 30_000,
      graceMs: 5_000,
      concurrency: 6,
      store: "/var/lib/ferry/store",
      webhookSecretFile: "/etc/ferry/webhook-secret",
      allow: ["registry.example.com/team"],
      registryHost: "registry.example.com",
      policy: {
        schedule: "0 * * * *",
        retention: { highPercent: 90, lowPercent: 70, maxAgeMs: 30 * 86_400_000 },
      },
    });
  });

  it("kubernetes: settings for ferry agent --kubernetes; a mistake names the key", () => {
    const settings = parseAgentSettings(
      "/etc/ferry/agent.yaml",
      `kubernetes:
  enabled: true
  kubeconfig: kube.conf
  startupTaint: example.com/images
  taintMode: continuous
  imageFs: /var/lib/containerd
  imageGCHighThresholdPercent: 80
  workloadPrePull: false
  prePullBudget: 5
  gateTimeout: 15m
`,
    );
    assert.deepEqual(settings, {
      kubernetes: {
        enabled: true,
        kubeconfig: "/etc/ferry/kube.conf",
        startupTaint: "example.com/images",
        taintMode: "continuous",
        imageFs: "/var/lib/containerd",
        imageGCHighThresholdPercent: 80,
        workloadPrePull: false,
        prePullBudget: 5,
        gateTimeoutMs: 15 * 60_000,
      },
    });
    const mistakes: Array<[string, RegExp, RegExp]> = [
      ["  prePullBudget: 0\n", /a\.yaml:2:18: kubernetes\.prePullBudget: /, /whole number from 1/],
      ["  prePullBudget: 2.5\n", /a\.yaml:2:18: kubernetes\.prePullBudget: /, /whole number/],
      ["  prePullBudget: three\n", /kubernetes\.prePullBudget: expected a whole number/, /nodes/],
      ["  gateTimeout: 10\n", /a\.yaml:2:16: kubernetes\.gateTimeout: /, /duration/],
      ["  gateTimeout: ten minutes\n", /kubernetes\.gateTimeout: .*not a duration/, /10m/],
      ["  gateTimeout: 0s\n", /kubernetes\.gateTimeout: must be at least 1s/, /10m/],
    ];
    for (const [line, message, hint] of mistakes)
      assert.throws(
        () => parseAgentSettings("a.yaml", `kubernetes:\n${line}`),
        (e: Error & { code?: string; hint?: string }) => {
          assert.equal(e.code, "FERRY_CONFIG_INVALID", line);
          assert.match(e.message, message, line);
          assert.match(e.hint ?? "", hint, line);
          return true;
        },
      );
    assert.throws(
      () => parseAgentSettings("a.yaml", "kubernetes:\n  taintMode: sometimes\n"),
      (e: Error & { hint?: string }) =>
        /a\.yaml:2:14: kubernetes\.taintMode/.test(e.message) &&
        /bootstrap or continuous/.test(e.hint ?? ""),
    );
  });

  it("retry: the backoff of failed images and the webhook-only cap, checked", () => {
    const settings = parseAgentSettings(
      "a.yaml",
      "retry:\n  required: {initial: 2s, max: 1m}\n  optional: {max: 30m}\n  webhookAttempts: 4\n",
    );
    assert.deepEqual(settings, {
      retry: {
        required: { initialMs: 2_000, maxMs: 60_000 },
        // the first wait not given: the default's (30 s)
        optional: { initialMs: 30_000, maxMs: 1_800_000 },
        webhookAttempts: 4,
      },
    });
    const mistakes: Array<[string, RegExp, RegExp]> = [
      [
        "  required: {initial: 0s}\n",
        /a\.yaml:2:13: retry\.required: the first wait must be at least 1s$/,
        /5s and 5m/,
      ],
      [
        "  required: {initial: 10m}\n",
        /retry\.required: the cap \(300s\) is shorter than the first wait \(600s\)$/,
        /5s and 5m/,
      ],
      ["  optional: {max: 2d}\n", /retry\.optional: .*at most 1d/, /5s and 5m/],
      ["  optional: {max: soon}\n", /retry\.optional\.max: .*not a duration/, /./],
      ["  optional: {cap: 5m}\n", /retry\.optional\.cap: unknown key/, /retry/],
      ["  webhookAttempts: 0\n", /a\.yaml:2:20: retry\.webhookAttempts: /, /1 to 1000/],
    ];
    for (const [line, message, hint] of mistakes)
      assert.throws(
        () => parseAgentSettings("a.yaml", `retry:\n${line}`),
        (e: Error & { code?: string; hint?: string }) => {
          assert.equal(e.code, "FERRY_CONFIG_INVALID", line);
          assert.match(e.message, message, line);
          assert.match(e.hint ?? "", hint, line);
          return true;
        },
      );
  });

  it("an empty file means no settings", () => {
    assert.deepEqual(parseAgentSettings("a.yaml", ""), {});
  });

  it("mistakes point at file:line:column and name the key", () => {
    const cases: Array<[string, RegExp, string]> = [
      ["schedule: every 5 minutes\n", /a\.yaml:1:11: schedule: .*not a cron expression/, "cron"],
      ["webhooks:\n  allow: [Team/Web]\n", /a\.yaml:2:11: webhooks\.allow\[0\]: /, "prefix"],
      ["listen: 8080\n", /a\.yaml:1:9: listen: expected HOST:PORT/, "listen"],
      ["images: x\nshedule: '* * * * *'\n", /a\.yaml:2:1: shedule: unknown key/, "unknown key"],
      [
        "policy:\n  schedule: '0 * * * *'\n  high: 80\n  low: 85\n",
        /a\.yaml:4:8: policy\.low: the low watermark/,
        "watermarks",
      ],
      ["targets: [podman]\n", /a\.yaml:1:11: targets\[0\]: /, "target"],
      ["images: [a\n", /a\.yaml:\d+:\d+: not valid YAML/, "syntax"],
    ];
    for (const [text, message, what] of cases) {
      assert.throws(
        () => parseAgentSettings("a.yaml", text),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, "FERRY_CONFIG_INVALID", what);
          assert.match(err.message, message, what);
          return true;
        },
      );
    }
  });

  it("the examples in deploy/ are valid", () => {
    const settings = parseAgentSettings(
      "/etc/ferry/agent.yaml",
      readFileSync(deploy("agent.yaml"), "utf8"),
    );
    assert.equal(settings.listFile, "/etc/ferry/images.yaml");
    assert.equal(settings.webhookSecretFile, "/etc/ferry/webhook-secret");
    assert.deepEqual(settings.targets, ["containerd"]);
    const list = parseImageList("images.yaml", readFileSync(deploy("images.yaml"), "utf8"));
    assert.equal(list.images.length, 4);
  });
});
