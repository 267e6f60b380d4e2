import { readFile, stat } from "node:fs/promises";
import { parseArgs } from "../args.ts";
import {
  type AgentSettings,
  type KubernetesSettings,
  createStoreTarget,
  loadAgentSettings,
  MeteredPuller,
  normalizePrefix,
  type OpenedTargets,
  runAgent,
  type TargetHooks,
  validateCron,
  WEBHOOK_KINDS,
} from "../../agent/index.ts";
import {
  checkGateTimeout,
  parsePrePullBudget,
  startKubernetesMode,
  type TaintMode,
} from "../../kube/index.ts";
import { FerryError, Metrics, oneOf } from "../../observe/index.ts";
import { hostPlatform, resolveImage } from "../../oci/index.ts";
import type { Reference } from "../../reference/index.ts";
import { type RegistryClient, RegistrySource } from "../../registry/index.ts";
import { TARGET_KINDS, type Target, type TargetKind } from "../../runtime/index.ts";
import {
  DEFAULT_RETENTION,
  parseDuration,
  parsePercent,
  type RetentionPolicy,
  validatePolicy,
} from "../../store/index.ts";
import { createRegistryClient, openStore } from "../context.ts";
import { ExitCode, type Output, usageError } from "../output.ts";
import { openTargets, positiveInteger, type TargetFlags, targetKind } from "../targets.ts";
import { retryFrom } from "./agent-retry.ts";

export const agentUsage = `Usage: ferry agent -c agent.yaml [options]
       ferry agent -f images.yaml [--target KIND] [--listen HOST:PORT] [--schedule CRON]
                   [--webhook-secret-file FILE --allow PREFIX...] [--jitter 30s]
                   [--policy-schedule CRON --high 85 --low 80]

Keep this machine's listed images in its targets: warm them at start, on a schedule and
when the list file changes (reloaded without a restart; images taken off it are unpinned),
and pull what registry webhooks announce. Serves /healthz, /readyz (200 once every required
image is in every target, else 503 with what is missing), /status (JSON), /metrics
(Prometheus) and POST /webhooks/${WEBHOOK_KINDS.join("|")}. JSON logs on stderr.
SIGTERM: stops taking work, lets pulls in flight finish, exits 0.

Options (flags override agent.yaml):
  -c, --agent-config FILE    agent.yaml: the settings below as YAML
  -f, --file LIST            image list: YAML (images:, targets:) or one reference per line
  --target KIND              ${oneOf(TARGET_KINDS)}; repeat for several (default: the
                             list's targets:, else store)
  --listen HOST:PORT         where to serve (default 127.0.0.1:8080)
  --schedule CRON            warm the whole list on this schedule, e.g. '*/30 * * * *'
  --jitter DURATION          wait a random time up to this before each scheduled run
  --webhook-secret-file FILE shared secret webhooks must present (Authorization: Bearer,
                             ?token=, or GitHub's X-Hub-Signature-256); webhooks are off without it
  --allow PREFIX             repository prefix webhooks may pull, repeatable (default: the
                             repositories of the listed images); * allows any
  --registry-host HOST       the Distribution registry's name for clients, when the Host its
                             notifications report is not it
  --policy-schedule CRON     apply the store's retention policy on this schedule:
    --high PERCENT             above this use of the store's filesystem… (default ${DEFAULT_RETENTION.highPercent})
    --low PERCENT              …evict least recently used unpinned images down to this (default ${DEFAULT_RETENTION.lowPercent})
    --max-age DURATION         and remove unpinned images not used for this long
  --concurrency N            images warmed at once (default 4)
  --grace DURATION           how long pulls in flight may finish at shutdown (default 20s)
  --retry-required INITIAL,MAX  waits before a failed required image is tried again: the first,
                             doubling up to the cap (default 5s,5m)
  --retry-optional INITIAL,MAX  the same for optional images and webhook-only ones (default 30s,10m)
  --retry-webhook-attempts N failed attempts in a row after which an image only a webhook named
                             is given up (default 8)
  --docker-host URL, --cri-endpoint URL, --store DIR, --config FILE
  -v, --verbose              debug log lines too

Kubernetes (a DaemonSet on every node; see docs/kubernetes-agent.md; agent.yaml: kubernetes:
with enabled, kubeconfig, startupTaint, taintMode, imageFs, imageGCHighThresholdPercent,
workloadPrePull, prePullBudget, gateTimeout, report (nodeimages, the default, or prepull
while agents of the previous version remain)):
  --kubernetes               also take images from ConfigMaps labelled ferry.dev/image-list=true
                             and the PrePulls matching this node (NODE_NAME) through its
                             NodeImages object, report there, remove the node's startup taint once every required image
                             is in the runtime, pre-pull workloads' new images
  --kubeconfig FILE          outside a pod (default: the ServiceAccount, else $KUBECONFIG)
  --startup-taint KEY        the taint to remove, or none (default
                             startup-taint.cluster-autoscaler.kubernetes.io/ferry-images)
  --taint-mode MODE          bootstrap (remove once, default) or continuous (re-add when a
                             required image disappears from the runtime)
  --image-fs PATH            the image filesystem checked before warms (default /var/lib/containerd)
  --image-gc-high PERCENT    kubelet's imageGCHighThresholdPercent (default 85)
  --no-workload-prepull      do not watch workloads
  --prepull-budget N         nodes pulling a rollout's new images at once, cluster-wide (default 3)
  --gate-timeout DURATION    how long the rollout gate holds a Deployment at most (default 10m)
`;

export async function agentCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      "agent-config": { type: "string", short: "c" },
      file: { type: "string", short: "f" },
      target: { type: "string", multiple: true },
      listen: { type: "string" },
      schedule: { type: "string" },
      jitter: { type: "string" },
      "webhook-secret-file": { type: "string" },
      allow: { type: "string", multiple: true },
      "registry-host": { type: "string" },
      "policy-schedule": { type: "string" },
      high: { type: "string" },
      low: { type: "string" },
      "max-age": { type: "string" },
      concurrency: { type: "string" },
      grace: { type: "string" },
      "retry-required": { type: "string" },
      "retry-optional": { type: "string" },
      "retry-webhook-attempts": { type: "string" },
      "docker-host": { type: "string" },
      "cri-endpoint": { type: "string" },
      store: { type: "string" },
      config: { type: "string" },
      verbose: { type: "boolean", short: "v" },
      kubernetes: { type: "boolean" },
      kubeconfig: { type: "string" },
      "startup-taint": { type: "string" },
      "taint-mode": { type: "string" },
      "image-fs": { type: "string" },
      "image-gc-high": { type: "string" },
      "no-workload-prepull": { type: "boolean" },
      "prepull-budget": { type: "string" },
      "gate-timeout": { type: "string" },
    },
  });
  if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]}"`);
  const file: AgentSettings =
    values["agent-config"] === undefined ? {} : await loadAgentSettings(values["agent-config"]);
  const listFile = values.file ?? file.listFile;
  const kubernetes = values.kubernetes === true || file.kubernetes?.enabled === true;
  if (listFile === undefined && !kubernetes) {
    throw usageError("agent needs an image list: -f LIST, or images: in agent.yaml (-c FILE)");
  }
  const listen = values.listen ?? file.listen ?? "127.0.0.1:8080";
  const hostPort = /^(\[[0-9a-f:.]+\]|[^:\s]+):(\d{1,5})$/i.exec(listen);
  if (hostPort === null) throw usageError(`--listen must be HOST:PORT, got "${listen}"`);
  const schedule = values.schedule ?? file.schedule;
  if (schedule !== undefined) validateCron(schedule, "--schedule");
  const allow = values.allow ?? file.allow;
  for (const prefix of allow ?? []) normalizePrefix(prefix);
  const secretFile = values["webhook-secret-file"] ?? file.webhookSecretFile;
  const flags = {
    store: values.store ?? file.store,
    config: values.config,
    "docker-host": values["docker-host"] ?? file.dockerHost,
    "cri-endpoint": values["cri-endpoint"] ?? file.criEndpoint,
  };
  const policy = policyFrom(values, file);
  const retry = retryFrom(values, file.retry);
  const log = (entry: Record<string, unknown>) => {
    if (entry.level === "debug" && values.verbose !== true) return;
    output.err(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  };
  const metrics = new Metrics();
  // Sizes for the headroom check: what an image adds to the image filesystem, estimated.
  const sizes = kubernetes ? createRegistryClient({ config: flags.config, output }) : undefined;
  const kube =
    sizes === undefined
      ? undefined
      : await startKubernetes(values, file.kubernetes ?? {}, listFile, metrics, log, (ref) =>
          estimateImageBytes(sizes, ref),
        );
  await runAgent({
    listFile: kube?.listFile ?? (listFile as string),
    metrics,
    node: kube?.nodeName,
    extendStatus: kube?.extendStatus,
    targets: values.target?.map(targetKind) ?? file.targets,
    host: (hostPort[1] as string).replace(/^\[|\]$/g, ""),
    port: Number(hostPort[2]),
    schedule,
    jitterMs:
      values.jitter === undefined ? file.jitterMs : parseDuration(values.jitter, "--jitter"),
    concurrency:
      values.concurrency === undefined
        ? file.concurrency
        : positiveInteger(values.concurrency, 4, "--concurrency"),
    webhookSecret: secretFile === undefined ? undefined : await readSecret(secretFile, log),
    allow,
    registryHost: values["registry-host"] ?? file.registryHost,
    policy,
    store: policy === undefined ? undefined : await openStore(flags),
    graceMs: values.grace === undefined ? file.graceMs : parseDuration(values.grace, "--grace"),
    retry,
    openTargets: async (kinds, hooks) => {
      const opened = await openAgentTargets(kinds, flags, output, hooks);
      return kube === undefined ? opened : kube.wrap(opened);
    },
    log,
    signal,
  });
  await sizes?.close();
  return ExitCode.ok;
}

function startKubernetes(
  values: Record<string, string | boolean | string[] | undefined>,
  settings: KubernetesSettings,
  listFile: string | undefined,
  metrics: Metrics,
  log: (entry: Record<string, unknown>) => void,
  estimateBytes: (ref: Reference) => Promise<number | undefined>,
) {
  const mode = values["taint-mode"] ?? settings.taintMode;
  if (mode !== undefined && mode !== "bootstrap" && mode !== "continuous")
    throw usageError(`--taint-mode is bootstrap or continuous, got "${String(mode)}"`);
  const high = values["image-gc-high"];
  const budget = values["prepull-budget"];
  const gateTimeout = values["gate-timeout"];
  return startKubernetesMode({
    kubeconfig: (values.kubeconfig as string | undefined) ?? settings.kubeconfig,
    listFile,
    startupTaintKey: (values["startup-taint"] as string | undefined) ?? settings.startupTaint,
    taintMode: mode as TaintMode | undefined,
    imageFsPath: (values["image-fs"] as string | undefined) ?? settings.imageFs,
    imageGCHighThresholdPercent:
      high === undefined
        ? settings.imageGCHighThresholdPercent
        : parsePercent(String(high), "--image-gc-high"),
    workloads: values["no-workload-prepull"] !== true && settings.workloadPrePull !== false,
    prePullBudget:
      budget === undefined ? settings.prePullBudget : parsePrePullBudget(String(budget)),
    gateTimeoutMs:
      gateTimeout === undefined
        ? settings.gateTimeoutMs
        : checkGateTimeout(parseDuration(String(gateTimeout), "--gate-timeout")),
    report: settings.report,
    metrics,
    log,
    estimateBytes,
  });
}

/**
 * Twice the compressed size of the host platform's config and layers: containerd keeps the
 * compressed blobs and unpacks them into a snapshot at least as large. Undefined when the
 * registry cannot be asked (the check then uses the current usage alone).
 */
async function estimateImageBytes(
  registry: RegistryClient,
  ref: Reference,
): Promise<number | undefined> {
  try {
    const { manifest: m } = await resolveImage(
      new RegistrySource(registry, ref),
      ref.digest ?? ref.tag ?? "latest",
      hostPlatform(),
    );
    return 2 * (m.config.size + m.layers.reduce((sum, l) => sum + l.size, 0));
  } catch {
    return undefined;
  }
}

/**
 * The targets as `warm` opens them, except that the store's puller counts what it downloads
 * for /metrics. Runtimes come from the shared openTargets.
 */
async function openAgentTargets(
  kinds: readonly TargetKind[],
  flags: TargetFlags,
  output: Output,
  hooks: TargetHooks,
): Promise<OpenedTargets> {
  const runtimes = await openTargets(
    kinds.filter((k) => k !== "store"),
    flags,
    output,
  );
  if (!kinds.includes("store")) return runtimes;
  const store = await openStore(flags);
  const registry = createRegistryClient({
    config: flags.config,
    credentials: runtimes.credentials,
    output,
  });
  const puller = new MeteredPuller({ registry, store }, (bytes) =>
    hooks.onPulledBytes("store", bytes),
  );
  const storeTarget = createStoreTarget({ store, puller, registry });
  return {
    targets: kinds.map((k) =>
      k === "store" ? storeTarget : (runtimes.targets.find((t) => t.kind === k) as Target),
    ),
    credentials: runtimes.credentials,
    store,
    close: async () => {
      await Promise.allSettled([runtimes.close(), puller.close(), registry.close()]);
    },
  };
}

function policyFrom(
  values: { "policy-schedule"?: string; high?: string; low?: string; "max-age"?: string },
  file: AgentSettings,
): { schedule: string; retention: RetentionPolicy } | undefined {
  const schedule = values["policy-schedule"] ?? file.policy?.schedule;
  const tuned = values.high ?? values.low ?? values["max-age"];
  if (schedule === undefined) {
    if (tuned !== undefined)
      throw usageError("--high, --low and --max-age go with --policy-schedule");
    return undefined;
  }
  validateCron(schedule, "--policy-schedule");
  const base = file.policy?.retention ?? DEFAULT_RETENTION;
  const retention: RetentionPolicy = {
    highPercent: values.high === undefined ? base.highPercent : parsePercent(values.high, "--high"),
    lowPercent: values.low === undefined ? base.lowPercent : parsePercent(values.low, "--low"),
    maxAgeMs:
      values["max-age"] === undefined
        ? base.maxAgeMs
        : parseDuration(values["max-age"], "--max-age"),
  };
  validatePolicy(retention);
  return { schedule, retention };
}

/** The secret, without its trailing newline; a file others can read is reported. */
async function readSecret(
  path: string,
  log: (entry: Record<string, unknown>) => void,
): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new FerryError("FERRY_CONFIG_NOT_FOUND", `cannot read the webhook secret file ${path}`, {
      hint: "create it with the shared secret (e.g. openssl rand -hex 32 > FILE; chmod 600 FILE)",
      fields: { path },
      cause: err,
    });
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret.trim() === "" || /\s/.test(secret)) {
    throw new FerryError(
      "FERRY_CONFIG_INVALID",
      `the webhook secret in ${path} is empty or has spaces`,
      {
        hint: "write one token on one line, e.g. openssl rand -hex 32 > FILE",
        fields: { path },
      },
    );
  }
  if (((await stat(path)).mode & 0o077) !== 0) {
    log({
      level: "warn",
      msg: "the webhook secret file is readable by others",
      path,
      hint: "chmod 600 it",
    });
  }
  return secret;
}
