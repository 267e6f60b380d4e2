/**
 * The cluster-wide pull budget: at most K nodes pull images for workload rollouts at once. A
 * node is busy while it holds a grant it has not finished (every image present, or failed) and
 * that is younger than the stale limit (a node that never reports must not hold a slot forever).
 * A busy node gets no further grants until it is done, so the registry sees at most K pulling
 * nodes whatever the number of rollouts.
 */

export const DEFAULT_PULL_BUDGET = 3;

/** A node's progress on one rollout, as its agent reported it in the PrePull status. */
export type NodeProgress = "complete" | "failed" | "pending";

export interface RolloutDemand {
  readonly id: string;
  /** Nodes that may run the workload, in the order they should be served. */
  readonly eligible: readonly string[];
  /** Node → time the grant was given (ms since epoch). */
  readonly granted: ReadonlyMap<string, number>;
  readonly progress: ReadonlyMap<string, NodeProgress>;
}

export interface BudgetOptions {
  /** Maximum nodes pulling at once, cluster-wide. */
  readonly budget: number;
  readonly now: number;
  /** A grant older than this no longer counts against the budget. */
  readonly staleAfterMs: number;
  /** A node that failed is granted again (a retry) once its grant is this old; never if absent. */
  readonly retryFailedAfterMs?: number;
}

/** Whether a grant still occupies a slot. */
function occupies(
  demand: RolloutDemand,
  node: string,
  grantedAt: number,
  options: BudgetOptions,
): boolean {
  const progress = demand.progress.get(node) ?? "pending";
  return progress === "pending" && options.now - grantedAt < options.staleAfterMs;
}

/**
 * Grants for every rollout: the existing ones (still eligible), plus new ones in rollout order
 * while the budget has room. Rollouts are served oldest first, nodes in the order given.
 */
export function allocateGrants(
  demands: readonly RolloutDemand[],
  options: BudgetOptions,
): Map<string, Map<string, number>> {
  const budget = Math.max(1, Math.floor(options.budget));
  const busy = new Set<string>();
  const result = new Map<string, Map<string, number>>();
  for (const demand of demands) {
    const eligible = new Set(demand.eligible);
    const kept = new Map<string, number>();
    for (const [node, at] of demand.granted) {
      if (!eligible.has(node)) continue;
      const retry = options.retryFailedAfterMs;
      if (
        demand.progress.get(node) === "failed" &&
        retry !== undefined &&
        options.now - at >= retry
      ) {
        continue;
      }
      kept.set(node, at);
      if (occupies(demand, node, at, options)) busy.add(node);
    }
    result.set(demand.id, kept);
  }
  for (const demand of demands) {
    const grants = result.get(demand.id) ?? new Map<string, number>();
    for (const node of demand.eligible) {
      if (busy.size >= budget) return result;
      if (grants.has(node) || busy.has(node)) continue;
      if (demand.progress.get(node) === "complete" && !demand.granted.has(node)) {
        // Already has everything (reported before a grant, e.g. after a leader change): no pull.
        grants.set(node, options.now);
        continue;
      }
      grants.set(node, options.now);
      busy.add(node);
    }
    result.set(demand.id, grants);
  }
  return result;
}
