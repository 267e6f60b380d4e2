/** The order recent activity is shown in: failures first, newest first within each. Pure. */
import type { ActivityEntry } from "./types.ts";

/** Rows the page shows of the activity kept. */
export const ACTIVITY_SHOWN = 25;

export function orderActivity(entries: readonly ActivityEntry[]): ActivityEntry[] {
  return [...entries].sort((a, b) => {
    const fa = a.result === "failed" ? 0 : 1;
    const fb = b.result === "failed" ? 0 : 1;
    return fa - fb || Date.parse(b.at) - Date.parse(a.at);
  });
}
