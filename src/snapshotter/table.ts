// The snapshots ferry serves, by name, kept in one JSON file rewritten atomically after every
// change: a restart of ferry (or of containerd) finds them as they were; a crash between a
// directory's creation and the record leaves an orphan directory that Cleanup removes.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { FerryError } from "../observe/index.ts";
import { writeFileAtomic } from "../store/index.ts";
import { alreadyExists, notFound } from "./errors.ts";

export type SnapshotKind = "view" | "active" | "committed";

/** Where a lazily mounted eStargz layer's bytes come from. */
export interface RemoteLayer {
  /** The image reference the layer was pulled for (its registry and repository). */
  readonly reference: string;
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  readonly tocDigest: string;
}

export interface Snapshot {
  /** Names the directory snapshots/<id>; never reused. */
  readonly id: string;
  name: string;
  kind: SnapshotKind;
  readonly parent: string | undefined;
  labels: Record<string, string>;
  readonly created: number;
  updated: number;
  readonly remote?: RemoteLayer | undefined;
  /** Bytes and inodes of a committed snapshot's own directory, measured when committed. */
  usage?: { size: number; inodes: number } | undefined;
}

interface TableFile {
  version: 1;
  nextId: number;
  snapshots: Snapshot[];
}

const FILE = "metadata.json";

export class SnapshotTable {
  readonly #file: string;
  readonly #byName = new Map<string, Snapshot>();
  #nextId = 1;
  /** Changes run one at a time, each saved before the next starts. */
  #turn: Promise<unknown> = Promise.resolve();

  private constructor(root: string) {
    this.#file = join(root, FILE);
  }

  static async open(root: string): Promise<SnapshotTable> {
    const table = new SnapshotTable(root);
    let text: string | undefined;
    try {
      text = await readFile(table.#file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (text !== undefined) {
      const doc = parseTable(text, table.#file);
      table.#nextId = doc.nextId;
      for (const s of doc.snapshots) table.#byName.set(s.name, s);
    }
    return table;
  }

  get(name: string): Snapshot | undefined {
    return this.#byName.get(name);
  }

  /** The snapshot named `name`; not found is an answer containerd expects. */
  need(name: string): Snapshot {
    const found = this.#byName.get(name);
    if (found === undefined) throw notFound(name);
    return found;
  }

  all(): Snapshot[] {
    return [...this.#byName.values()];
  }

  /** The parents of `snapshot`, nearest first. */
  parents(snapshot: Snapshot): Snapshot[] {
    const out: Snapshot[] = [];
    for (let p = snapshot.parent; p !== undefined; p = this.need(p).parent) out.push(this.need(p));
    return out;
  }

  children(name: string): Snapshot[] {
    return this.all().filter((s) => s.parent === name);
  }

  /** A fresh id for a directory about to be made (recorded with the next save). */
  nextId(): string {
    return String(this.#nextId++);
  }

  /** Runs `change` alone and saves the table after it; the change is undone if the save fails. */
  change<T>(change: (table: SnapshotTable) => T | Promise<T>): Promise<T> {
    const run = this.#turn.then(async () => {
      const before = new Map([...this.#byName].map(([k, v]) => [k, structuredClone(v)]));
      try {
        const result = await change(this);
        await this.#save();
        return result;
      } catch (err) {
        this.#byName.clear();
        for (const [k, v] of before) this.#byName.set(k, v);
        throw err;
      }
    });
    this.#turn = run.catch(() => undefined);
    return run;
  }

  add(snapshot: Snapshot): void {
    if (this.#byName.has(snapshot.name)) throw alreadyExists(snapshot.name);
    this.#byName.set(snapshot.name, snapshot);
  }

  rename(from: string, to: string): void {
    const s = this.need(from);
    if (this.#byName.has(to)) throw alreadyExists(to);
    this.#byName.delete(from);
    s.name = to;
    this.#byName.set(to, s);
  }

  delete(name: string): void {
    this.#byName.delete(name);
  }

  #save(): Promise<void> {
    const doc: TableFile = { version: 1, nextId: this.#nextId, snapshots: this.all() };
    return writeFileAtomic(this.#file, `${JSON.stringify(doc)}\n`);
  }
}

function parseTable(text: string, file: string): TableFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw corrupt(file, cause);
  }
  const t = doc as Partial<TableFile> | null;
  if (t?.version !== 1 || typeof t.nextId !== "number" || !Array.isArray(t.snapshots))
    throw corrupt(file, undefined);
  return t as TableFile;
}

function corrupt(file: string, cause: unknown): FerryError {
  return new FerryError("FERRY_STORE_CORRUPT", `${file} is not a ferry snapshot table`, {
    hint: "it is written atomically, so something else changed it; move it aside to start with no snapshots (containerd will pull again)",
    fields: { file },
    cause,
  });
}
