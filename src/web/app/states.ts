/** A cell's state in words, as the grid and the server's snapshot show it. Pure. */
export const STATE_LABELS: Readonly<Record<string, string>> = {
  present: "present",
  pulled: "present",
  pulling: "pulling",
  missing: "missing",
  failed: "failed",
  // Not looked at yet (queued): not there as far as anyone knows.
  unknown: "missing",
};
