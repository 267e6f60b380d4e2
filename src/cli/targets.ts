/**
 * What `warm`, `check` and `bootstrap` share: the image list from -f and
 * arguments, the targets from --target (else the list's, else the store),
 * and the endpoints of the runtimes.
 */
import {
  createStoreTarget,
  entriesFromReferences,
  type ImageEntry,
  loadImageList,
} from "../agent/index.ts";
import { type CredentialSource, defaultCredentialSource } from "../config/index.ts";
import { formatPlatform, parsePlatform } from "../oci/index.ts";
import { oneOf } from "../observe/index.ts";
import { DEFAULT_CONCURRENCY, Puller } from "../pull/index.ts";
import { createTarget, TARGET_KINDS, type Target, type TargetKind } from "../runtime/index.ts";
import type { Store } from "../store/index.ts";
import { createRegistryClient, type GlobalOptions, openStore } from "./context.ts";
import type { Output } from "./output.ts";
import { usageError } from "./output.ts";

/** The options every target-aware command takes, for parseArgs. */
export const TARGET_OPTIONS = {
  file: { type: "string", short: "f" },
  target: { type: "string", multiple: true },
  platform: { type: "string" },
  concurrency: { type: "string" },
  json: { type: "boolean" },
  store: { type: "string" },
  config: { type: "string" },
  "docker-host": { type: "string" },
  "cri-endpoint": { type: "string" },
} as const;

export const TARGET_USAGE = `  -f, --file LIST           image list: YAML (images:, targets:) or one reference per line
  --target KIND             ${oneOf(TARGET_KINDS)}; repeat for several (default: the
                            list's targets:, else store)
  --platform OS/ARCH        for images the list gives no platform (default: the target's own)
  --concurrency N           image × target jobs at once (default ${DEFAULT_CONCURRENCY})
  --docker-host URL         Docker Engine API (default: $DOCKER_HOST, else its socket)
  --cri-endpoint URL        CRI socket (default: $CONTAINER_RUNTIME_ENDPOINT, else containerd's)
  --store DIR, --config FILE, --json
`;

export interface TargetFlags extends GlobalOptions {
  file?: string | undefined;
  target?: string[] | undefined;
  platform?: string | undefined;
  concurrency?: string | undefined;
  "docker-host"?: string | undefined;
  "cri-endpoint"?: string | undefined;
}

/** Each runtime's endpoint flag: a new runtime kind must name its own. */
const ENDPOINT_FLAGS = {
  docker: "docker-host",
  containerd: "cri-endpoint",
} as const satisfies Record<Exclude<TargetKind, "store">, keyof TargetFlags>;

export interface Plan {
  readonly images: ImageEntry[];
  readonly kinds: TargetKind[];
  readonly concurrency: number;
}

/** Reads the list and checks the flags, before anything is opened. */
export async function planFromFlags(
  flags: TargetFlags,
  references: readonly string[],
  command: string,
): Promise<Plan> {
  const list = flags.file === undefined ? undefined : await loadImageList(flags.file);
  const images = [...(list?.images ?? []), ...entriesFromReferences(references)];
  if (list === undefined && images.length === 0) {
    throw usageError(`${command} needs an image list (-f LIST) or image references`);
  }
  const platform =
    flags.platform === undefined ? undefined : formatPlatform(parsePlatform(flags.platform));
  const withPlatform = images.map((e) =>
    e.platform === undefined && platform ? { ...e, platform } : e,
  );
  const kinds = flags.target?.length ? flags.target.map(targetKind) : [...(list?.targets ?? [])];
  if (kinds.length === 0) kinds.push("store");
  return {
    images: withPlatform,
    kinds: [...new Set(kinds)],
    concurrency: positiveInteger(flags.concurrency, DEFAULT_CONCURRENCY, "--concurrency"),
  };
}

export interface OpenTargets {
  readonly targets: Target[];
  readonly credentials: CredentialSource;
  /** ferry's store, when it is one of the targets. */
  readonly store: Store | undefined;
  close(): Promise<void>;
}

export async function openTargets(
  kinds: readonly TargetKind[],
  flags: TargetFlags,
  output: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<OpenTargets> {
  const credentials = defaultCredentialSource(env);
  const targets: Target[] = [];
  const closers: Array<() => Promise<void>> = [];
  let store: Store | undefined;
  try {
    for (const kind of kinds) {
      if (kind === "store") {
        store = await openStore(flags);
        const registry = createRegistryClient({ config: flags.config, credentials, output });
        const puller = new Puller({ registry, store });
        closers.push(() => puller.close());
        targets.push(createStoreTarget({ store, puller, registry }));
      } else {
        // Without a flag, the runtime module reads DOCKER_HOST / CONTAINER_RUNTIME_ENDPOINT from env.
        const endpoint = flags[ENDPOINT_FLAGS[kind]];
        targets.push(createTarget(kind, { env, ...(endpoint ? { endpoint } : {}) }));
      }
    }
  } catch (err) {
    await closeAll(targets, closers);
    throw err;
  }
  return { targets, credentials, store, close: () => closeAll(targets, closers) };
}

async function closeAll(targets: readonly Target[], closers: ReadonlyArray<() => Promise<void>>) {
  await Promise.allSettled([...targets.map((t) => t.close()), ...closers.map((c) => c())]);
}

/** A --target value, refused unless it is one of TARGET_KINDS. */
export function targetKind(text: string): TargetKind {
  const kind = TARGET_KINDS.find((k) => k === text);
  if (kind === undefined) {
    throw usageError(`unknown target "${text}"`, `--target is one of: ${TARGET_KINDS.join(", ")}`);
  }
  return kind;
}

export function positiveInteger(
  text: string | undefined,
  fallback: number,
  option: string,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw usageError(`${option} must be a whole number from 1 to 64, got "${text}"`);
  }
  return n;
}
