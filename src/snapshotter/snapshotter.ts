// containerd's snapshotter contract over directories: active snapshots are written by
// containerd (a layer's diff applied, a container's changes), committed ones are read-only
// parents, views look at a parent; remote snapshots are eStargz layers mounted lazily and
// committed under the name containerd asked for, so containerd never fetches those layers.
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { alreadyExists, SnapshotError } from "./errors.ts";
import { type RemoteRequest, remoteRequest } from "./labels.ts";
import { type Mount, mountsOf } from "./mounts.ts";
import { type RemoteLayer, type Snapshot, type SnapshotKind, SnapshotTable } from "./table.ts";
import { diskUsage, type Usage } from "./usage.ts";

/** containerd's snapshots.Info */
export interface SnapshotInfo {
  readonly name: string;
  readonly parent: string;
  readonly kind: SnapshotKind;
  readonly created: number;
  readonly updated: number;
  readonly labels: Readonly<Record<string, string>>;
}

/** eStargz layers shown lazily, each in a directory: what the snapshotter needs of the lazy side. */
export interface RemoteLayers {
  /** The layer a request names, when it can be read lazily; undefined (with a warning) when not. */
  resolve(request: RemoteRequest): Promise<RemoteLayer | undefined>;
  /** Verifies the layer's TOC and shows it at path(id); throws when it cannot. */
  add(id: string, layer: RemoteLayer): Promise<void>;
  /** Stops showing layer `id` (nothing when it is not shown). */
  remove(id: string): Promise<void>;
  path(id: string): string;
  /** Stops showing every layer. */
  close(): Promise<void>;
}

export type SnapshotterEvent =
  | { type: "remote-committed"; name: string; layer: string }
  | { type: "remounted"; name: string; layer: string }
  | { type: "remount-failed"; name: string; layer: string; error: unknown }
  | { type: "orphan-removed"; dir: string }
  | { type: "not-lazy"; layer: string; error: unknown };

export interface SnapshotterOptions {
  root: string;
  remote?: RemoteLayers | undefined;
  onEvent?: ((event: SnapshotterEvent) => void) | undefined;
}

export class Snapshotter {
  readonly #root: string;
  readonly #table: SnapshotTable;
  readonly #remote: RemoteLayers | undefined;
  readonly #emit: (event: SnapshotterEvent) => void;
  /** Remote snapshots being made, by target name: concurrent pulls of one layer share one. */
  readonly #making = new Map<string, Promise<boolean>>();

  private constructor(options: SnapshotterOptions, table: SnapshotTable) {
    this.#root = options.root;
    this.#table = table;
    this.#remote = options.remote;
    this.#emit = options.onEvent ?? (() => undefined);
  }

  /** Opens the snapshots under `root` and mounts the lazy layers of the committed remote ones again. */
  static async open(options: SnapshotterOptions): Promise<Snapshotter> {
    await mkdir(join(options.root, "snapshots"), { recursive: true });
    const s = new Snapshotter(options, await SnapshotTable.open(options.root));
    await s.#remountAll();
    return s;
  }

  prepare(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.#create("active", key, parent, labels);
  }

  view(key: string, parent: string, labels: Record<string, string>): Promise<Mount[]> {
    return this.#create("view", key, parent, labels);
  }

  mounts(key: string): Mount[] {
    const s = this.#table.need(key);
    const parents = this.#table.parents(s);
    this.#checkLazy(key, [s, ...parents]);
    return mountsOf(s, parents, this.#dirs);
  }

  async commit(name: string, key: string, labels: Record<string, string>): Promise<void> {
    const s = this.#table.need(key);
    if (s.kind !== "active")
      throw new SnapshotError(
        "failed-precondition",
        `snapshot ${key} is not active: only an active snapshot can be committed`,
      );
    const usage = await diskUsage(this.#dirs.fs(s));
    await this.#table.change((t) => {
      t.rename(key, name);
      const c = t.need(name);
      c.kind = "committed";
      c.labels = { ...labels };
      c.updated = Date.now();
      c.usage = usage;
    });
  }

  async remove(key: string): Promise<void> {
    const s = this.#table.need(key);
    if (this.#table.children(key).length > 0)
      throw new SnapshotError(
        "failed-precondition",
        `snapshot ${key} has children: remove them first`,
      );
    // Recorded first: a crash after this leaves an orphan directory, which Cleanup removes.
    await this.#table.change((t) => t.delete(key));
    if (s.remote !== undefined) await this.#remote?.remove(s.id);
    await this.#removeDir(s.id);
  }

  /** The directory id of a snapshot (its files are under ROOT/snapshots/ID). */
  id(key: string): string {
    return this.#table.need(key).id;
  }

  stat(key: string): SnapshotInfo {
    return info(this.#table.need(key));
  }

  /** Changes labels only (name, parent, kind and times are not changeable): all of them, or those `paths` name. */
  async update(
    name: string,
    labels: Record<string, string>,
    paths: readonly string[],
  ): Promise<SnapshotInfo> {
    return this.#table.change((t) => {
      const s = t.need(name);
      let next = { ...s.labels };
      if (paths.length === 0) next = { ...labels };
      for (const path of paths) {
        if (path === "labels") next = { ...labels };
        else if (path.startsWith("labels.")) {
          const k = path.slice("labels.".length);
          const v = labels[k];
          if (v === undefined) delete next[k];
          else next[k] = v;
        } else
          throw new SnapshotError(
            "invalid-argument",
            `cannot update field ${path} of snapshot ${name}: only labels can change`,
          );
      }
      s.labels = next;
      s.updated = Date.now();
      return info(s);
    });
  }

  list(): SnapshotInfo[] {
    return this.#table.all().map(info);
  }

  async usage(key: string): Promise<Usage> {
    const s = this.#table.need(key);
    if (s.remote !== undefined) return { size: 0, inodes: 0 };
    return s.usage ?? diskUsage(this.#dirs.fs(s));
  }

  /** Removes the directories of snapshots that are not recorded (left by a crash). */
  async cleanup(): Promise<void> {
    const known = new Set(this.#table.all().map((s) => s.id));
    for (const id of await readdir(join(this.#root, "snapshots"))) {
      if (known.has(id)) continue;
      await this.#removeDir(id);
      this.#emit({ type: "orphan-removed", dir: join(this.#root, "snapshots", id) });
    }
  }

  readonly #dirs = {
    fs: (s: Snapshot) =>
      s.remote !== undefined && this.#remote !== undefined
        ? this.#remote.path(s.id)
        : join(this.#root, "snapshots", s.id, "fs"),
    work: (s: Snapshot) => join(this.#root, "snapshots", s.id, "work"),
  };

  async #create(
    kind: "active" | "view",
    key: string,
    parent: string,
    labels: Record<string, string>,
  ): Promise<Mount[]> {
    if (key === "") throw new SnapshotError("invalid-argument", "a snapshot needs a key");
    const request = kind === "active" ? remoteRequest(labels) : undefined;
    if (request !== undefined && (await this.#remoteSnapshot(request, parent, labels)))
      throw alreadyExists(request.target);
    if (this.#table.get(key) !== undefined) throw alreadyExists(key);
    this.#checkParent(parent);
    if (parent !== "")
      this.#checkLazy(key, [
        this.#table.need(parent),
        ...this.#table.parents(this.#table.need(parent)),
      ]);
    const id = this.#table.nextId();
    // An id taken before a crash, never recorded, may have left a directory: start it empty.
    await this.#removeDir(id);
    const snapshot: Snapshot = {
      id,
      name: key,
      kind,
      parent: parent === "" ? undefined : parent,
      labels: { ...labels },
      created: Date.now(),
      updated: Date.now(),
    };
    await mkdir(this.#dirs.fs(snapshot), { recursive: true });
    if (kind === "active") await mkdir(this.#dirs.work(snapshot), { recursive: true });
    try {
      await this.#table.change((t) => t.add(snapshot));
    } catch (err) {
      await this.#removeDir(id);
      throw err;
    }
    return this.mounts(key);
  }

  /** Without the lazy side its layers would be empty directories: refuse rather than run on them. */
  #checkLazy(key: string, chain: readonly Snapshot[]): void {
    const lazy = chain.find((p) => p.remote !== undefined);
    if (lazy !== undefined && this.#remote === undefined)
      throw new SnapshotError(
        "failed-precondition",
        `snapshot ${key} needs lazy layer ${lazy.remote?.digest}, and ferry runs with --no-lazy`,
      );
  }

  #checkParent(parent: string): void {
    if (parent === "") return;
    const p = this.#table.need(parent);
    if (p.kind !== "committed")
      throw new SnapshotError("invalid-argument", `parent ${parent} is not a committed snapshot`);
  }

  /** True once the layer is mounted lazily and committed as `request.target`; false to unpack it. */
  #remoteSnapshot(
    request: RemoteRequest,
    parent: string,
    labels: Record<string, string>,
  ): Promise<boolean> {
    if (this.#remote === undefined) return Promise.resolve(false);
    const existing = this.#table.get(request.target);
    if (existing !== undefined) return Promise.resolve(existing.kind === "committed");
    let making = this.#making.get(request.target);
    if (making === undefined) {
      making = this.#makeRemote(this.#remote, request, parent, labels).finally(() =>
        this.#making.delete(request.target),
      );
      this.#making.set(request.target, making);
    }
    return making;
  }

  async #makeRemote(
    remote: RemoteLayers,
    request: RemoteRequest,
    parent: string,
    labels: Record<string, string>,
  ): Promise<boolean> {
    this.#checkParent(parent);
    const layer = await remote.resolve(request);
    if (layer === undefined) return false;
    const snapshot: Snapshot = {
      id: this.#table.nextId(),
      name: request.target,
      kind: "committed",
      parent: parent === "" ? undefined : parent,
      labels: { ...labels },
      created: Date.now(),
      updated: Date.now(),
      remote: layer,
    };
    try {
      await remote.add(snapshot.id, layer);
    } catch (error) {
      // Not lazy after all (a TOC that does not verify, a registry that refuses ranges): unpacked whole.
      this.#emit({ type: "not-lazy", layer: layer.digest, error });
      return false;
    }
    try {
      await this.#table.change((t) => t.add(snapshot));
    } catch (err) {
      await remote.remove(snapshot.id);
      throw err;
    }
    this.#emit({ type: "remote-committed", name: request.target, layer: layer.digest });
    return true;
  }

  async #remountAll(): Promise<void> {
    if (this.#remote === undefined) return;
    for (const s of this.#table.all()) {
      if (s.remote === undefined) continue;
      try {
        await this.#remote.add(s.id, s.remote);
        this.#emit({ type: "remounted", name: s.name, layer: s.remote.digest });
      } catch (error) {
        this.#emit({ type: "remount-failed", name: s.name, layer: s.remote.digest, error });
      }
    }
  }

  async #removeDir(id: string): Promise<void> {
    await rm(join(this.#root, "snapshots", id), { recursive: true, force: true });
  }
}

function info(s: Snapshot): SnapshotInfo {
  return {
    name: s.name,
    parent: s.parent ?? "",
    kind: s.kind,
    created: s.created,
    updated: s.updated,
    labels: s.labels,
  };
}
