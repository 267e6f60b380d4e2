/**
 * `npm run build` (also run by `npm ci` through `prepare`): bundles the CLI into
 * dist/cli with esbuild, so a command loads a few files instead of ~90 type-stripped
 * modules (start-up is most of a repeat pull). bin/ferry.js uses the bundle only
 * while every source file it was built from is unchanged, and the sources otherwise.
 *
 * The bundle is written to a temporary directory and renamed into place, so a build
 * killed half-way leaves the previous bundle (or none), never a mix.
 */
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { build } from "esbuild";
import { type BuildInfo, sourceBuildInfo } from "../src/cli/build-info.ts";

const ROOT = resolve(import.meta.dirname, "..");
const OUT = join(ROOT, "dist", "cli");

export async function buildCli(out = OUT): Promise<{ files: number; inputs: number }> {
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  const startedAt = Date.now();
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: {
      main: "src/cli/main.ts",
      // started by pull/sink-pool.ts as a worker thread, by file name
      "sink-worker": "src/pull/sink-worker.ts",
    },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22.12",
    packages: "external",
    chunkNames: "chunk-[hash]",
    metafile: true,
    logLevel: "warning",
    define: buildStampDefine(),
  });
  for (const file of (await readdir(tmp)).filter((f) => f.endsWith(".js"))) {
    const path = join(tmp, file);
    await writeFile(path, builtinsByGetter(await readFile(path, "utf8"), file));
  }
  // runtime/grpc.ts and snapshotter/grpc-server.ts load their .proto files from beside the code
  for (const module of ["runtime", "snapshotter"]) {
    const dir = join(ROOT, "src", module);
    for (const proto of (await readdir(dir)).filter((f) => f.endsWith(".proto")))
      await copyFile(join(dir, proto), join(tmp, proto));
  }
  const inputs = Object.keys(result.metafile.inputs)
    .filter((f) => !f.includes("node_modules") && !f.startsWith("<define:"))
    .map((f) => relative(ROOT, resolve(ROOT, f)))
    .sort();
  // The sources' mtimes are compared with this: anything edited after the build started is newer.
  await writeFile(join(tmp, "inputs.json"), `${JSON.stringify({ builtAt: startedAt, inputs })}\n`);
  await mkdir(dirname(out), { recursive: true });
  await rm(out, { recursive: true, force: true });
  await rename(tmp, out);
  return { files: (await readdir(out)).length, inputs: inputs.length };
}

/** The version, commit and build date that `ferry version` reports, recorded in the build. */
export function buildStamp(): BuildInfo {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  const date = new Date(epoch === undefined ? Date.now() : Number(epoch) * 1000).toISOString();
  return { ...sourceBuildInfo(ROOT), date };
}

/** esbuild's `define` that puts buildStamp() in place of src/cli/build-info.ts's FERRY_BUILD. */
export function buildStampDefine(stamp: BuildInfo = buildStamp()): Record<string, string> {
  return { FERRY_BUILD: JSON.stringify(stamp) };
}

/**
 * Built-ins loaded at the first call of a function taken from them rather than with the
 * chunk: node:crypto's require() loads every crypto submodule, ~8 ms of start-up, and a
 * repeat pull calls none of its functions (a stored manifest equal to the registry's answer
 * is not hashed again; the last-use record's name is hashed by digest/sha256.ts).
 */
const LAZY_BUILTINS = new Set(["node:crypto"]);

/**
 * Rewrites the bundle's static imports of Node built-ins (`import { createHash } from
 * "node:crypto"`) into `process.getBuiltinModule` reads. An ES import of a built-in
 * makes Node read every export of it, running lazy getters: node:crypto then loads
 * WebCrypto and node:fs loads fs/promises, ~10 ms of a ~140 ms repeat pull. Reading
 * only the names used leaves the rest unloaded. A long import list spans lines.
 */
export function builtinsByGetter(code: string, file = "bundle"): string {
  // The reads go to the top of the file, as imports are hoisted: a module that runs before
  // the one whose section held the import (an import cycle) must find them initialised.
  const hoisted: string[] = [];
  const rest = code.replace(
    /^import\s+(?:([^;"]+?)\s+from\s+)?"(node:[^"]+)";\n?/gm,
    (_line, clause: string | undefined, id: string) => {
      hoisted.push(rewriteImport(clause, id, file));
      return "";
    },
  );
  return hoisted.length === 0 ? code : `${hoisted.join("\n")}\n${rest}`;
}

function rewriteImport(clause: string | undefined, id: string, file: string): string {
  const get = `process.getBuiltinModule(${JSON.stringify(id)})`;
  if (clause === undefined) return `${get};`;
  const parts: string[] = [];
  let rest = clause.trim();
  const named = /\{([^}]*)\}\s*$/.exec(rest);
  if (named !== null) {
    const fields: string[] = [];
    for (const n of (named[1] as string).split(",").map((x) => x.trim())) {
      if (n === "") continue;
      const m = /^([\w$]+)(?:\s+as\s+([\w$]+))?$/.exec(n);
      if (m === null) throw new Error(`${file}: cannot rewrite import of ${id}: ${clause}`);
      const [, name, local = name] = m as unknown as [string, string, string | undefined];
      if (LAZY_BUILTINS.has(id) && /^[a-z]/.test(name)) {
        // A function (lower-case export): load the built-in at the first call.
        parts.push(`const ${local} = (...args) => ${get}.${name}(...args);`);
      } else fields.push(local === name ? name : `${name}: ${local}`);
    }
    if (fields.length > 0) parts.unshift(`const { ${fields.join(", ")} } = ${get};`);
    rest = rest.slice(0, named.index).replace(/,\s*$/, "").trim();
  }
  const namespace = /^\*\s+as\s+([\w$]+)$/.exec(rest);
  const defaultAndNamespace = /^([\w$]+)\s*,\s*\*\s+as\s+([\w$]+)$/.exec(rest);
  if (defaultAndNamespace !== null) {
    parts.push(`const ${defaultAndNamespace[1]} = ${get}, ${defaultAndNamespace[2]} = ${get};`);
  } else if (namespace !== null) {
    parts.push(`const ${namespace[1]} = ${get};`);
  } else if (/^[\w$]+$/.test(rest)) {
    parts.push(`const ${rest} = ${get};`);
  } else if (rest !== "") {
    throw new Error(`${file}: cannot rewrite import of ${id}: ${clause}`);
  }
  return parts.join(" ");
}

if (import.meta.main) {
  const { files, inputs } = await buildCli();
  process.stdout.write(`dist/cli: ${files} files bundled from ${inputs} sources\n`);
}
