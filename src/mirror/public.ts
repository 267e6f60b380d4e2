import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Store, writeFileAtomic } from "../store/index.ts";

/**
 * The repositories (domain/path) the mirror has proven anonymously readable upstream: an
 * anonymous fetch of one of their manifests succeeded. Persisted in the store under
 * `ferry/mirror/public.json` so a restart or an upstream outage does not forget them.
 */
export class PublicRepositories {
  readonly #path: string;
  #set: Set<string> | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(store: Store) {
    this.#path = join(store.root, "ferry", "mirror", "public.json");
  }

  async has(repository: string): Promise<boolean> {
    return (await this.#load()).has(repository);
  }

  async add(repository: string): Promise<void> {
    const set = await this.#load();
    if (set.has(repository)) return;
    set.add(repository);
    // Writes are chained, and merge what another mirror on the same store wrote meanwhile.
    const write = async () => {
      for (const r of await this.#read()) set.add(r);
      const body = `${JSON.stringify({ repositories: [...set].sort() }, null, 2)}\n`;
      await writeFileAtomic(this.#path, body);
    };
    this.#writing = this.#writing.then(write, write);
    await this.#writing;
  }

  async #load(): Promise<Set<string>> {
    if (this.#set !== undefined) return this.#set;
    const loaded = new Set(await this.#read());
    this.#set ??= loaded;
    return this.#set;
  }

  async #read(): Promise<string[]> {
    try {
      const doc = JSON.parse(await readFile(this.#path, "utf8")) as { repositories?: unknown };
      const list = Array.isArray(doc.repositories) ? doc.repositories : [];
      return list.filter((r): r is string => typeof r === "string");
    } catch {
      return []; // missing or unreadable: nothing is proven public yet
    }
  }
}
