import type { PullSummary } from "../pull/index.ts";
import { familiarName, parseReference } from "../reference/index.ts";

/** Docker's short layer id: the first 12 hex digits. */
export const shortId = (digest: string) =>
  digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);

export function header(reference: string): string {
  // Docker shows the repository path alone: "16: Pulling from library/postgres".
  const ref = parseReference(reference);
  return `${ref.digest ?? ref.tag}: Pulling from ${ref.path}`;
}

export function statusLine(s: PullSummary): string {
  const name = familiarName(parseReference(s.reference));
  return s.status === "up-to-date"
    ? `Status: Image is up to date for ${name}`
    : `Status: Downloaded newer image for ${name}`;
}
