/**
 * Files built into ferry's single executable (scripts/build-sea.ts) as node:sea assets: the
 * status page, the runtime .proto definitions, the hashing worker. Elsewhere (sources, the
 * bundle) there are none, and callers read their files from disk as before.
 */
import { createRequire } from "node:module";

type Sea = typeof import("node:sea");

const requireBuiltin = createRequire(import.meta.url);
let sea: Sea | null | undefined;

/** node:sea when this process is the single executable, else null (loaded on first call). */
function singleExecutable(): Sea | null {
  if (sea === undefined) {
    const candidate = requireBuiltin("node:sea") as Sea;
    sea = candidate.isSea() ? candidate : null;
  }
  return sea;
}

/** The keys of the embedded assets under `prefix` (e.g. "web/"), or undefined outside the executable. */
export function embeddedAssetKeys(prefix: string): string[] | undefined {
  return singleExecutable()
    ?.getAssetKeys()
    .filter((key) => key.startsWith(prefix));
}

/** An embedded asset's bytes, or undefined outside the executable or when it has none by that key. */
export function embeddedAsset(key: string): Buffer | undefined {
  const s = singleExecutable();
  if (s === null || !s.getAssetKeys().includes(key)) return undefined;
  return Buffer.from(s.getAsset(key));
}
