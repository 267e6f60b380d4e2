import { tagListPath } from "../registry/index.ts";

/** One page of a repository's tags (`n`, `last`), and the Link to the next one. */
export interface TagPage {
  body: { name: string; tags: string[] };
  /** `</v2/…/tags/list?…>; rel="next"` when more tags follow. */
  link: string | undefined;
}

/** A tags/list request's paging: at most `n` tags after `last`, on the registry `?ns=` named. */
export interface TagPaging {
  n: number | undefined;
  last: string | undefined;
  namespace: string | undefined;
}

/**
 * Sorts and dedupes `tags`, keeps those after `last`, at most `n`. The next page's Link
 * keeps `?ns=`, so paging stays on the registry the client asked about.
 */
export function tagPage(path: string, tags: readonly string[], paging: TagPaging): TagPage {
  const { n, last, namespace } = paging;
  const sorted = [...new Set(tags)].sort();
  const after = last === undefined ? sorted : sorted.filter((t) => t > last);
  const page = n === undefined ? after : after.slice(0, n);
  let link: string | undefined;
  if (n !== undefined && after.length > page.length && page.length > 0) {
    const next = new URLSearchParams({ n: String(n), last: page[page.length - 1] as string });
    if (namespace !== undefined) next.set("ns", namespace);
    link = `<${tagListPath(path)}?${next.toString()}>; rel="next"`;
  }
  return { body: { name: path, tags: page }, link };
}

/** The tags of `domain/path` among the store's recorded references (what a failing upstream leaves). */
export function recordedTags(
  references: readonly string[],
  domain: string,
  path: string,
): string[] {
  const prefix = `${domain}/${path}:`;
  return references.filter((r) => r.startsWith(prefix)).map((r) => r.slice(prefix.length));
}
