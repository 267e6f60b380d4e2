import { parseManifest } from "../oci/index.ts";
import type { Store } from "../store/index.ts";

/**
 * The digests a repository (domain/path) is known to contain: the manifests its
 * index.json records name, their children, configs and layers, plus what the mirror
 * learned from manifests it fetched for it. A blob is only served under a repository
 * that contains it.
 */
export class RepositoryMembers {
  readonly #store: Store;
  readonly #learned = new Map<string, Set<string>>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Adds `digest` (and, for a manifest, what it names) to what `repository` contains. */
  learn(repository: string, digest: string, manifest?: { bytes: Buffer; mediaType: string }): void {
    const set = this.#set(repository);
    set.add(digest);
    if (manifest === undefined) return;
    const named = namedBy(manifest.bytes, manifest.mediaType);
    for (const d of [...named.manifests, ...named.leaves]) set.add(d);
  }

  async contains(repository: string, digest: string): Promise<boolean> {
    if (this.#learned.get(repository)?.has(digest)) return true;
    // Not learned in this process: walk the store's records for the repository (another
    // process may have pulled it).
    const set = this.#set(repository);
    const prefix = [`${repository}:`, `${repository}@`];
    const roots = (await this.#store.images())
      .filter((r) => prefix.some((p) => r.reference.startsWith(p)))
      .flatMap((r) => [r.sourceDigest, r.descriptor.digest]);
    const seen = new Set<string>();
    const queue = [...roots];
    while (queue.length > 0) {
      const d = queue.pop() as string;
      if (seen.has(d)) continue;
      seen.add(d);
      set.add(d);
      // Only manifests are read (roots and index children); configs and layers are leaves.
      const bytes = await this.#store.readBlob(d).catch(() => undefined);
      if (bytes === undefined) continue;
      const named = namedBy(bytes, undefined);
      queue.push(...named.manifests);
      for (const leaf of named.leaves) set.add(leaf);
    }
    return set.has(digest);
  }

  #set(repository: string): Set<string> {
    let set = this.#learned.get(repository);
    if (set === undefined) {
      set = new Set();
      this.#learned.set(repository, set);
    }
    return set;
  }
}

/** What a manifest or index names; nothing for a blob that is not one. */
function namedBy(
  bytes: Buffer,
  mediaType: string | undefined,
): { manifests: string[]; leaves: string[] } {
  try {
    const parsed = parseManifest(bytes, mediaType);
    return parsed.kind === "index"
      ? { manifests: parsed.index.manifests.map((m) => m.digest), leaves: [] }
      : {
          manifests: [],
          leaves: [parsed.manifest.config, ...parsed.manifest.layers].map((d) => d.digest),
        };
  } catch {
    return { manifests: [], leaves: [] };
  }
}
