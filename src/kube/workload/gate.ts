/**
 * The opt-in rollout gate, as a pure decision: given a Deployment annotated
 * `ferry.dev/prepull: gate` and the state of its current rollout, hold it (pause), keep holding,
 * or release it. Ferry remembers that it paused a Deployment in an annotation, so it only ever
 * resumes what it paused itself.
 */

/** The opt-in annotation and its one value. */
export const GATE_ANNOTATION = "ferry.dev/prepull";
export const GATE_VALUE = "gate";
/** Set by ferry while it holds a Deployment: the rollout (PrePull name) it waits for. */
export const HELD_FOR_ANNOTATION = "ferry.dev/held-for";
/** Set by ferry while it holds a Deployment: when the hold began (RFC 3339). */
export const HELD_SINCE_ANNOTATION = "ferry.dev/held-since";

export const DEFAULT_GATE_TIMEOUT_MS = 10 * 60_000;

/** Event reasons on the Deployment; tests and alerts match on these. */
export const GateReason = {
  Hold: "PrePullHold",
  Release: "PrePullRelease",
  Timeout: "PrePullTimeout",
  Skipped: "PrePullGateSkipped",
} as const;

/** What the gate did for a rollout, recorded on the rollout's PrePull. */
export type GateRecord = "held" | "released" | "timeout" | "skipped";

export interface GateInput {
  readonly annotations: Readonly<Record<string, string>>;
  readonly paused: boolean;
  /** The rollout of the Deployment's current template, if ferry saw its images change. */
  readonly rollout:
    | { readonly name: string; readonly complete: boolean; readonly record: GateRecord | undefined }
    | undefined;
  readonly now: number;
  readonly timeoutMs: number;
}

export type GateDecision =
  | { readonly action: "none" }
  | { readonly action: "hold"; readonly rollout: string }
  | { readonly action: "retarget"; readonly rollout: string }
  | { readonly action: "skip"; readonly rollout: string }
  | {
      readonly action: "release";
      readonly reason: typeof GateReason.Release | typeof GateReason.Timeout;
      readonly rollout: string | undefined;
      readonly message: string;
    };

export function isGated(annotations: Readonly<Record<string, string>>): boolean {
  return annotations[GATE_ANNOTATION]?.trim().toLowerCase() === GATE_VALUE;
}

export function decideGate(input: GateInput): GateDecision {
  const { annotations, rollout } = input;
  const heldFor = annotations[HELD_FOR_ANNOTATION];
  if (heldFor !== undefined) {
    if (!isGated(annotations)) {
      return {
        action: "release",
        reason: GateReason.Release,
        rollout: heldFor,
        message: `the ${GATE_ANNOTATION} annotation was removed; resuming the rollout ferry paused`,
      };
    }
    if (rollout === undefined || rollout.complete) {
      return {
        action: "release",
        reason: GateReason.Release,
        rollout: rollout?.name ?? heldFor,
        message: "the new images are present on every eligible node",
      };
    }
    const since = Date.parse(annotations[HELD_SINCE_ANNOTATION] ?? "");
    if (!Number.isFinite(since) || input.now - since >= input.timeoutMs) {
      return {
        action: "release",
        reason: GateReason.Timeout,
        rollout: rollout.name,
        message: `the new images were not present on every eligible node within ${Math.round(input.timeoutMs / 1000)} s; resuming anyway`,
      };
    }
    if (heldFor !== rollout.name) return { action: "retarget", rollout: rollout.name };
    return { action: "none" };
  }
  if (!isGated(annotations) || rollout === undefined) return { action: "none" };
  if (rollout.record !== undefined || rollout.complete) return { action: "none" };
  if (input.paused) return { action: "skip", rollout: rollout.name };
  return { action: "hold", rollout: rollout.name };
}
