/**
 * The startup taint: removed from the agent's own node once every required image is in the
 * runtime, with a JSON patch that tests the taints it read (a concurrent change makes the
 * patch fail and the agent re-reads), touching only the taint with ferry's key.
 */
import type { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { FerryError } from "../observe/index.ts";
import { apiStatus } from "./api-errors.ts";
import { STARTUP_TAINT_EFFECT, STARTUP_TAINT_VALUE } from "./names.ts";
import { getRawJson } from "./raw.ts";

/**
 * A taint as the API server's JSON holds it (`timeAdded` a string, exactly as stored): a patch
 * `test` compares JSON values, so it must be built from these, never from client-node's models.
 */
export interface Taint {
  readonly key: string;
  readonly value?: string | undefined;
  readonly effect: string;
  readonly timeAdded?: unknown;
}

export type JsonPatchOp =
  | { op: "test"; path: string; value: unknown }
  | { op: "replace" | "add"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** Pure: the patch removing every taint with `key`, conditional on the taints read; undefined when there is none. */
export function planTaintRemoval(
  taints: readonly Taint[] | undefined,
  key: string,
): JsonPatchOp[] | undefined {
  if (taints === undefined || !taints.some((t) => t.key === key)) return undefined;
  return [
    { op: "test", path: "/spec/taints", value: taints },
    { op: "replace", path: "/spec/taints", value: taints.filter((t) => t.key !== key) },
  ];
}

/** Pure: the patch adding ferry's taint (continuous mode), conditional on what was read; undefined when present. */
export function planTaintAddition(
  taints: readonly Taint[] | undefined,
  resourceVersion: string,
  key: string,
): JsonPatchOp[] | undefined {
  if (taints?.some((t) => t.key === key)) return undefined;
  const taint = { key, value: STARTUP_TAINT_VALUE, effect: STARTUP_TAINT_EFFECT };
  if (taints === undefined)
    return [
      { op: "test", path: "/metadata/resourceVersion", value: resourceVersion },
      { op: "add", path: "/spec/taints", value: [taint] },
    ];
  return [
    { op: "test", path: "/spec/taints", value: taints },
    { op: "add", path: "/spec/taints/-", value: taint },
  ];
}

const MAX_ATTEMPTS = 10;

export type TaintChange = "changed" | "unchanged";

/**
 * Reads the node (as raw JSON: the plan's `test` must match what the server stored), plans,
 * patches; a failed test (422) or a conflict (409) means another writer got in between, so it
 * reads again.
 */
export async function changeTaint(
  core: CoreV1Api,
  config: KubeConfig,
  nodeName: string,
  plan: (
    taints: readonly Taint[] | undefined,
    resourceVersion: string,
  ) => JsonPatchOp[] | undefined,
  onRetry?: (attempt: number) => void,
): Promise<TaintChange> {
  const options = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch);
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const node = (await getRawJson(config, `/api/v1/nodes/${encodeURIComponent(nodeName)}`)) as {
      metadata?: { resourceVersion?: string };
      spec?: { taints?: Taint[] };
    };
    const patch = plan(node.spec?.taints, node.metadata?.resourceVersion ?? "");
    if (patch === undefined) return "unchanged";
    try {
      await core.patchNode({ name: nodeName, body: patch }, options);
      return "changed";
    } catch (error) {
      const status = apiStatus(error);
      if (status !== 409 && status !== 422) throw error;
      onRetry?.(attempt);
    }
  }
  throw new FerryError(
    "FERRY_INTERNAL",
    `node ${nodeName}: its taints kept changing under ${MAX_ATTEMPTS} attempts`,
    {
      hint: "another controller rewrites the node's taints continuously; the agent tries again on its next pass",
      fields: { node: nodeName },
    },
  );
}
