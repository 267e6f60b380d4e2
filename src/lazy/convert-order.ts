import { posix } from "node:path";
import type { TarEntry } from "./convert-tar.ts";
import { LANDMARKS, TOC_NAME } from "./toc.ts";

export interface Ordered {
  /** Entries that go before the landmark: the prioritized files, each after its parent directories (and a hard link after its target). */
  readonly first: readonly TarEntry[];
  /** Everything else, in the source's order. */
  readonly rest: readonly TarEntry[];
  /** Prioritized paths this layer has. */
  readonly found: readonly string[];
}

/** A path from a prioritize list as an entry path: "/usr/bin/x", "./usr/bin/x" and "usr/bin/x" are the same file. */
export function priorityPath(line: string): string {
  const clean = posix.normalize(`/${line.trim()}`).replace(/\/+$/, "");
  return clean.replace(/^\/+/, "");
}

/**
 * Orders a layer's entries the way eStargz prefetching expects: the
 * prioritized files first (with the directories above them, and a hard link's
 * target before the link), then the rest in their original order. Entries the
 * converter writes itself (the TOC, landmarks) are dropped from the source.
 */
export function orderEntries(entries: readonly TarEntry[], prioritize: readonly string[]): Ordered {
  const byPath = new Map<string, TarEntry[]>();
  const kept: TarEntry[] = [];
  for (const e of entries) {
    if (e.path === TOC_NAME || LANDMARKS.has(e.path)) continue;
    kept.push(e);
    const list = byPath.get(e.path);
    if (list === undefined) byPath.set(e.path, [e]);
    else list.push(e);
  }
  const moved = new Set<TarEntry>();
  const first: TarEntry[] = [];
  const found: string[] = [];
  const move = (path: string): boolean => {
    if (path !== "") move(parentOf(path));
    const here = byPath.get(path);
    if (here === undefined) return false;
    for (const e of here) {
      if (moved.has(e)) continue;
      moved.add(e); // before following a link, so a cycle of hard links ends
      if (e.type === "hardlink" && e.linkName !== undefined) move(e.linkName);
      first.push(e);
    }
    return true;
  };
  for (const raw of prioritize) {
    const path = priorityPath(raw);
    if (path === "" || path === TOC_NAME || LANDMARKS.has(path)) continue;
    if (move(path)) found.push(path);
  }
  if (first.length === 0) return { first: [], rest: kept, found };
  return { first, rest: kept.filter((e) => !moved.has(e)), found };
}

function parentOf(path: string): string {
  const dir = posix.dirname(path);
  return dir === "." ? "" : dir;
}
