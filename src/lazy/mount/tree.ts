// The merged root filesystem of an image's layers as an inode tree: whiteouts and opaque
// directories applied, hard links sharing one inode. Pure: entries in, tree out.
import { posix } from "node:path";
import { invalidLayer } from "../errors.ts";
import type { Chunk, EntryType, TocEntry } from "../toc.ts";
import { LANDMARKS } from "../toc.ts";

/** A TOC entry with the fields the read side does not need but a filesystem shows. */
export interface MountEntry extends TocEntry {
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly xattrs: ReadonlyMap<string, Buffer>;
  readonly devMajor: number;
  readonly devMinor: number;
}

/** Where a regular file's bytes are: a layer and its verified chunk list. */
export interface Content {
  readonly layer: number;
  /** The file's path in that layer's TOC (what `--record` writes). */
  readonly path: string;
  readonly chunks: readonly Chunk[];
}

export type NodeType = Exclude<EntryType, "hardlink">;

export interface FsNode {
  ino: number;
  type: NodeType;
  /** Permission bits (with setuid/setgid/sticky). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devMajor: number;
  devMinor: number;
  xattrs: ReadonlyMap<string, Buffer>;
  linkName: string | undefined;
  content: Content | undefined;
  nlink: number;
  /** Directories only: name → child, and the parent for "..". */
  children: Map<string, FsNode> | undefined;
  parent: FsNode | undefined;
}

export interface FsTree {
  readonly root: FsNode;
  /** Index = inode number; 0 is unused, 1 is the root. */
  readonly nodes: readonly FsNode[];
}

const TYPE_BITS: Record<NodeType, number> = {
  dir: 0o040000,
  reg: 0o100000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

/** st_mode of a node: type bits and permissions. */
export function statMode(node: FsNode): number {
  return TYPE_BITS[node.type] | (node.mode & 0o7777);
}

function newNode(type: NodeType, parent: FsNode | undefined): FsNode {
  return {
    ino: 0,
    type,
    mode: type === "dir" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    size: 0,
    mtime: 0,
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
    linkName: undefined,
    content: undefined,
    nlink: 1,
    children: type === "dir" ? new Map() : undefined,
    parent,
  };
}

function setAttrs(node: FsNode, e: MountEntry): void {
  node.mode = e.mode & 0o7777;
  node.uid = e.uid;
  node.gid = e.gid;
  node.mtime = e.mtime;
  node.xattrs = e.xattrs;
}

/** The directory at `path`, creating missing ones (a layer may name a file before, or without, its parents). */
function ensureDir(root: FsNode, path: string): FsNode {
  let dir = root;
  if (path === "") return dir;
  for (const name of path.split("/")) {
    const children = dir.children as Map<string, FsNode>;
    let child = children.get(name);
    if (child === undefined || child.type !== "dir") {
      child = newNode("dir", dir);
      children.set(name, child);
    }
    dir = child;
  }
  return dir;
}

function find(root: FsNode, path: string): FsNode | undefined {
  if (path === "") return root;
  let node: FsNode | undefined = root;
  for (const name of path.split("/")) {
    node = node?.children?.get(name);
    if (node === undefined) return undefined;
  }
  return node;
}

function split(path: string): { dir: string; name: string } {
  const dir = posix.dirname(path);
  return { dir: dir === "." ? "" : dir, name: posix.basename(path) };
}

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * Applies the layers lowest first. Within a layer, its whiteouts act on the layers below
 * before its own entries are added (an overlay's lower dirs), as containerd unpacks them.
 */
export function buildTree(layers: readonly (readonly MountEntry[])[]): FsTree {
  const root = newNode("dir", undefined);
  root.parent = root;
  for (let i = 0; i < layers.length; i++) {
    const entries = layers[i] as readonly MountEntry[];
    for (const e of entries) {
      const { dir, name } = split(e.path);
      if (!name.startsWith(WHITEOUT)) continue;
      const parent = find(root, dir);
      if (parent?.children === undefined) continue;
      if (name === OPAQUE) parent.children.clear();
      else parent.children.delete(name.slice(WHITEOUT.length));
    }
    for (const e of entries) {
      if (e.path === "") {
        setAttrs(root, e);
        continue;
      }
      const { dir, name } = split(e.path);
      if (name.startsWith(WHITEOUT) || LANDMARKS.has(e.path)) continue;
      const parent = ensureDir(root, dir);
      const children = parent.children as Map<string, FsNode>;
      if (e.type === "hardlink") {
        const target = find(root, e.linkName ?? "");
        if (target === undefined || target.type === "dir")
          throw invalidLayer(
            `#${i}`,
            `hard link "${e.path}" points at "${e.linkName}", which is not a file of the image`,
          );
        // One inode: the link's header sets its attributes too (last wins, as when unpacking).
        setAttrs(target, e);
        children.set(name, target);
        continue;
      }
      const existing = children.get(name);
      let node: FsNode;
      if (e.type === "dir" && existing?.type === "dir") node = existing;
      else {
        node = newNode(e.type, parent);
        children.set(name, node);
      }
      setAttrs(node, e);
      if (e.type === "reg") {
        node.size = e.size;
        node.content = { layer: i, path: e.path, chunks: e.chunks };
      } else if (e.type === "symlink") {
        node.linkName = e.linkName ?? "";
        node.size = Buffer.byteLength(node.linkName);
      } else if (e.type === "char" || e.type === "block") {
        node.devMajor = e.devMajor;
        node.devMinor = e.devMinor;
      }
    }
  }
  return number(root);
}

/** Gives inode numbers (root = 1, hard links once) and link counts. */
function number(root: FsNode): FsTree {
  const nodes: FsNode[] = [root, root];
  root.ino = 1;
  const seen = new Set<FsNode>([root]);
  const queue: FsNode[] = [root];
  root.nlink = 2;
  while (queue.length > 0) {
    const dir = queue.shift() as FsNode;
    for (const child of (dir.children as Map<string, FsNode>).values()) {
      if (!seen.has(child)) {
        seen.add(child);
        child.ino = nodes.length;
        nodes.push(child);
        child.nlink = child.type === "dir" ? 2 : 0;
        if (child.type === "dir") {
          child.parent = dir;
          queue.push(child);
        }
      }
      if (child.type === "dir") dir.nlink++;
      else child.nlink++;
    }
  }
  return { root, nodes };
}
