/**
 * agent.yaml: the settings of `ferry agent -c FILE`, the same ones its flags give. Validated
 * as a whole; every mistake is reported at file:line:column with its key, like ferry's
 * config file. yaml and zod are loaded on first use (only the agent pays for them).
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import type * as Yaml from "yaml";
import type * as Zod from "zod";
import { FerryError, isFerryError } from "../observe/index.ts";
import { TARGET_KINDS, type TargetKind } from "../runtime/index.ts";
import { parseDuration, type RetentionPolicy, validatePolicy } from "../store/index.ts";
import {
  type BackoffPolicy,
  backoffPolicy,
  backoffProblem,
  OPTIONAL_IMAGE_BACKOFF,
  REQUIRED_IMAGE_BACKOFF,
} from "./backoff.ts";
import { HINTS as LIST_HINTS } from "./image-list-entry.ts";
import { validateCron } from "./schedule.ts";
import { normalizePrefix } from "./webhooks.ts";

export interface AgentSettings {
  readonly listFile?: string;
  readonly targets?: readonly TargetKind[];
  /** HOST:PORT */
  readonly listen?: string;
  readonly schedule?: string;
  readonly jitterMs?: number;
  /** How long pulls in flight may finish at shutdown. */
  readonly graceMs?: number;
  readonly concurrency?: number;
  readonly store?: string;
  readonly dockerHost?: string;
  readonly criEndpoint?: string;
  readonly webhookSecretFile?: string;
  readonly allow?: readonly string[];
  readonly registryHost?: string;
  readonly policy?: { readonly schedule: string; readonly retention: RetentionPolicy };
  /** The agent's own retries of failed images (flags override). */
  readonly retry?: RetrySettings;
  /** `ferry agent --kubernetes` settings (kube/ reads them; flags override). */
  readonly kubernetes?: KubernetesSettings;
}

export interface RetrySettings {
  readonly required?: BackoffPolicy;
  readonly optional?: BackoffPolicy;
  /** Failed attempts in a row after which an image only a webhook named is forgotten. */
  readonly webhookAttempts?: number;
}

export interface KubernetesSettings {
  readonly enabled?: boolean;
  readonly kubeconfig?: string;
  /** the taint key, or "none" */
  readonly startupTaint?: string;
  readonly taintMode?: "bootstrap" | "continuous";
  readonly imageFs?: string;
  readonly imageGCHighThresholdPercent?: number;
  readonly workloadPrePull?: boolean;
  /** Nodes pulling for rollouts at once, cluster-wide. */
  readonly prePullBudget?: number;
  /** How long the rollout gate holds a Deployment at most. */
  readonly gateTimeoutMs?: number;
  /** Where the node agent learns what to hold and reports: its NodeImages, or every PrePull. */
  readonly report?: "nodeimages" | "prepull";
}

const require = createRequire(import.meta.url);
const KEYS =
  "images, targets, listen, schedule, jitter, grace, concurrency, store, dockerHost, criEndpoint, webhooks, policy, retry, kubernetes";
const HINTS: Readonly<Record<string, string>> = {
  images: "images is the path of the image list (relative to this file)",
  targets: LIST_HINTS.targets,
  listen: "listen is HOST:PORT, e.g. 127.0.0.1:8080",
  schedule: 'a cron expression, e.g. "*/30 * * * *"',
  jitter: "jitter is a duration such as 30s or 2m",
  grace: "grace is a duration such as 20s",
  concurrency: "concurrency is a whole number from 1 to 64",
  allow: "allow is a list of repository prefixes, e.g. registry.example.com/team",
  secretFile: "secretFile is the path of a file holding the shared secret",
  high: "high and low are whole percentages, low below high",
  low: "high and low are whole percentages, low below high",
  maxAge: "maxAge is a duration such as 30d",
  taintMode: "taintMode is bootstrap or continuous",
  report:
    "report is nodeimages (the node's own NodeImages object) or prepull (every PrePull, the previous version's way)",
  required:
    "required and optional take initial and max, durations such as 5s and 5m (max at least initial)",
  optional:
    "required and optional take initial and max, durations such as 5s and 5m (max at least initial)",
  webhookAttempts: "webhookAttempts is a whole number from 1 to 1000 (default 8)",
  imageGCHighThresholdPercent:
    "imageGCHighThresholdPercent is kubelet's, a whole percentage (default 85)",
  prePullBudget:
    "prePullBudget is how many nodes may pull a rollout's images at once, a whole number from 1 (default 3)",
  gateTimeout: "gateTimeout is a duration of at least 1s, such as 10m (default 10m)",
};

export async function loadAgentSettings(path: string): Promise<AgentSettings> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new FerryError(
      code === "ENOENT" ? "FERRY_CONFIG_NOT_FOUND" : "FERRY_CONFIG_INVALID",
      code === "ENOENT" ? `agent config ${path} does not exist` : `cannot read ${path} (${code})`,
      { hint: "check the path given with -c", fields: { path }, cause: err },
    );
  }
  return parseAgentSettings(path, text);
}

export function parseAgentSettings(path: string, text: string): AgentSettings {
  const yaml = require("yaml") as typeof Yaml;
  const lines = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const at = lines.linePos(syntax.pos[0]);
    throw invalid(
      path,
      at,
      [],
      `not valid YAML: ${syntax.message}`,
      "fix the YAML syntax there",
      0,
    );
  }
  const result = schema().safeParse(doc.toJS());
  if (!result.success) {
    const issues = result.error.issues
      .flatMap((i) =>
        i.code === "unrecognized_keys"
          ? i.keys.map((k) => ({ path: [...i.path, k], message: "unknown key", key: true }))
          : [{ path: i.path, message: i.message, key: false }],
      )
      .map((i) => ({ ...i, at: locate(yaml, doc, lines, i.path, i.key) }))
      .sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col);
    const first = issues[0]!;
    const last = first.path.findLast((p) => typeof p === "string");
    const hint = first.key ? `known keys: ${KEYS}` : (HINTS[String(last)] ?? `known keys: ${KEYS}`);
    throw invalid(path, first.at, first.path, first.message, hint, issues.length - 1);
  }
  const d = result.data ?? {};
  const base = dirname(resolve(path));
  const file = (p: string | undefined) => (p === undefined ? undefined : resolve(base, p));
  const policy = d.policy ?? undefined;
  const kube = d.kubernetes ?? undefined;
  const retry = d.retry ?? undefined;
  const policyOf = (what: string, defaults: BackoffPolicy, b: BackoffSettings | undefined) =>
    b === undefined ? undefined : backoffPolicy(what, defaults, ms(b.initial), ms(b.max));
  return strip({
    listFile: file(d.images),
    targets: d.targets,
    listen: d.listen,
    schedule: d.schedule,
    jitterMs: d.jitter === undefined ? undefined : parseDuration(d.jitter),
    graceMs: d.grace === undefined ? undefined : parseDuration(d.grace),
    concurrency: d.concurrency,
    store: file(d.store),
    dockerHost: d.dockerHost,
    criEndpoint: d.criEndpoint,
    webhookSecretFile: file(d.webhooks?.secretFile),
    allow: d.webhooks?.allow,
    registryHost: d.webhooks?.registryHost,
    policy:
      policy === undefined
        ? undefined
        : {
            schedule: policy.schedule,
            retention: {
              highPercent: policy.high ?? 85,
              lowPercent: policy.low ?? 80,
              maxAgeMs: policy.maxAge === undefined ? undefined : parseDuration(policy.maxAge),
            },
          },
    retry:
      retry === undefined
        ? undefined
        : strip({
            required: policyOf("retry.required", REQUIRED_IMAGE_BACKOFF, retry.required),
            optional: policyOf("retry.optional", OPTIONAL_IMAGE_BACKOFF, retry.optional),
            webhookAttempts: retry.webhookAttempts,
          }),
    kubernetes:
      kube === undefined
        ? undefined
        : strip({
            enabled: kube.enabled,
            kubeconfig: file(kube.kubeconfig),
            startupTaint: kube.startupTaint,
            taintMode: kube.taintMode,
            // an absolute host path, not relative to this file
            imageFs: kube.imageFs,
            imageGCHighThresholdPercent: kube.imageGCHighThresholdPercent,
            workloadPrePull: kube.workloadPrePull,
            prePullBudget: kube.prePullBudget,
            gateTimeoutMs:
              kube.gateTimeout === undefined ? undefined : parseDuration(kube.gateTimeout),
            report: kube.report,
          }),
  });
}

function buildSchema(z: typeof Zod.z) {
  const checked = (check: (text: string) => void) =>
    z.string({ error: "expected a string" }).superRefine((text, ctx) => {
      try {
        check(text);
      } catch (err) {
        if (!isFerryError(err)) throw err;
        ctx.addIssue({ code: "custom", message: err.message });
      }
    });
  const cron = checked((t) => validateCron(t));
  const duration = checked((t) => parseDuration(t));
  const percent = z.int({ error: "expected a whole percentage" }).min(0).max(100);
  const path = z.string({ error: "expected a file path" }).min(1, "empty path");
  const backoff = (defaults: BackoffPolicy) =>
    z
      .strictObject({ initial: duration.optional(), max: duration.optional() })
      .superRefine((b, ctx) => {
        const problem = backoffProblem({
          initialMs: ms(b.initial) ?? defaults.initialMs,
          maxMs: ms(b.max) ?? defaults.maxMs,
        });
        if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
      });
  const policy = z
    .strictObject({
      schedule: cron,
      high: percent.optional(),
      low: percent.optional(),
      maxAge: duration.optional(),
    })
    .superRefine((p, ctx) => {
      try {
        validatePolicy({ highPercent: p.high ?? 85, lowPercent: p.low ?? 80 });
      } catch (err) {
        if (isFerryError(err))
          ctx.addIssue({ code: "custom", path: ["low"], message: err.message });
      }
    });
  return z
    .strictObject(
      {
        images: path.optional(),
        targets: z.array(z.enum(TARGET_KINDS)).min(1).optional(),
        listen: z
          .string({ error: "expected HOST:PORT" })
          .regex(/^(\[[0-9a-f:.]+\]|[^:\s]+):\d{1,5}$/i, "expected HOST:PORT")
          .optional(),
        schedule: cron.optional(),
        jitter: duration.optional(),
        grace: duration.optional(),
        concurrency: z.int({ error: "expected a whole number" }).min(1).max(64).optional(),
        store: path.optional(),
        dockerHost: z.string().min(1).optional(),
        criEndpoint: z.string().min(1).optional(),
        webhooks: z
          .strictObject({
            secretFile: path.optional(),
            allow: z.array(checked((t) => normalizePrefix(t))).optional(),
            registryHost: z.string().min(1).optional(),
          })
          .optional(),
        policy: policy.optional(),
        retry: z
          .strictObject({
            required: backoff(REQUIRED_IMAGE_BACKOFF).optional(),
            optional: backoff(OPTIONAL_IMAGE_BACKOFF).optional(),
            webhookAttempts: z
              .int({ error: "expected a whole number of attempts" })
              .min(1)
              .max(1000)
              .optional(),
          })
          .optional(),
        kubernetes: z
          .strictObject({
            enabled: z.boolean({ error: "expected true or false" }).optional(),
            kubeconfig: path.optional(),
            startupTaint: z.string().min(1).optional(),
            taintMode: z.enum(["bootstrap", "continuous"]).optional(),
            imageFs: path.optional(),
            imageGCHighThresholdPercent: percent.optional(),
            workloadPrePull: z.boolean({ error: "expected true or false" }).optional(),
            prePullBudget: z
              .int({ error: "expected a whole number of nodes" })
              .min(1)
              .max(10_000)
              .optional(),
            gateTimeout: checked((t) => {
              if (parseDuration(t) < 1000)
                throw new FerryError("FERRY_CONFIG_INVALID", "must be at least 1s");
            }).optional(),
            report: z.enum(["nodeimages", "prepull"]).optional(),
          })
          .optional(),
      },
      { error: "expected a mapping of agent settings" },
    )
    .nullish();
}

interface BackoffSettings {
  readonly initial?: string | undefined;
  readonly max?: string | undefined;
}

/** A duration setting in ms; undefined when absent or not a duration (its own issue says so). */
function ms(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

let cached: ReturnType<typeof buildSchema> | undefined;
function schema(): ReturnType<typeof buildSchema> {
  cached ??= buildSchema((require("zod") as typeof Zod).z);
  return cached;
}

interface Position {
  readonly line: number;
  readonly col: number;
}

/** Where the node at `path` starts (its key with `key`), or its nearest ancestor. */
function locate(
  yaml: typeof Yaml,
  doc: Yaml.Document,
  lines: Yaml.LineCounter,
  path: readonly PropertyKey[],
  key: boolean,
): Position {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (const [i, segment] of path.entries()) {
    if (yaml.isMap(node)) {
      const pair = node.items.find(
        (p) => String(yaml.isScalar(p.key) ? p.key.value : p.key) === String(segment),
      );
      if (pair === undefined) break;
      const keyAt = rangeStart(pair.key);
      offset = (i === path.length - 1 && key ? keyAt : (rangeStart(pair.value) ?? keyAt)) ?? offset;
      node = pair.value;
    } else if (
      yaml.isSeq(node) &&
      typeof segment === "number" &&
      node.items[segment] !== undefined
    ) {
      node = node.items[segment];
      offset = rangeStart(node) ?? offset;
    } else break;
  }
  return lines.linePos(offset);
}

function rangeStart(node: unknown): number | undefined {
  return (node as { range?: readonly number[] | null } | null | undefined)?.range?.[0];
}

function invalid(
  file: string,
  at: Position,
  path: readonly PropertyKey[],
  message: string,
  hint: string,
  more: number,
): FerryError {
  const key = path
    .map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`))
    .join("");
  return new FerryError(
    "FERRY_CONFIG_INVALID",
    `agent config ${file}:${at.line}:${at.col}: ${key === "" ? "" : `${key}: `}${message}${more > 0 ? ` (and ${more} more)` : ""}`,
    { hint, fields: { path: file, line: at.line, column: at.col, key } },
  );
}

/** Drops undefined members, so spreading settings over defaults keeps the defaults. */
function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
