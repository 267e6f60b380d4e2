/**
 * `npm run sea`: ferry as one executable file for hosts without Node (Node's single executable
 * applications). esbuild bundles the CLI with every package into one CommonJS file; the status
 * page, the runtime .proto files (parsed, as JSON) and the hashing worker go in as SEA assets
 * (read through src/observe/embedded.ts); Node writes the preparation blob, with a code cache,
 * and postject injects it into a copy of the Node that runs this script.
 *
 *   node scripts/build-sea.ts [-o FILE] [--no-code-cache]     (default: dist/sea/ferry)
 *
 * Everything is made in a temporary directory and the executable renamed into place, so a
 * build killed half-way leaves the previous executable (or none), never a partial one.
 */
import { execFile } from "node:child_process";
import { chmod, copyFile, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { build, type Plugin } from "esbuild";
import protobuf from "protobufjs";
import { EMBEDDED_WORKER } from "../src/pull/sink-pool.ts";
import { EMBEDDED_PROTOS, PROTO_FILES } from "../src/runtime/grpc.ts";
import { EMBEDDED_SNAPSHOTS_PROTO, SNAPSHOTS_PROTO } from "../src/snapshotter/grpc-server.ts";
import { buildStampDefine } from "./build.ts";
import { buildWeb } from "./build-web.ts";

const ROOT = resolve(import.meta.dirname, "..");
const OUT = join(ROOT, "dist", "sea", "ferry");
/** The fuse Node's binary carries for postject to flip (Node's SEA documentation). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const run = promisify(execFile);

/** The CLI's entry: what bin/ferry.js does, as a script (argv[1] is the executable too). */
const ENTRY = `import { main } from "./src/cli/main.ts";
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
`;

/**
 * CommonJS has no import.meta: its url becomes the file's own URL, and the sources'
 * `createRequire(import.meta.url)` (lazy loading of packages and built-ins) becomes the plain
 * `require`, which esbuild follows, so those packages are bundled too.
 */
const commonJs: Plugin = {
  name: "ferry-commonjs",
  setup(b) {
    b.onLoad({ filter: /[/\\]src[/\\].*\.ts$/ }, async (args) => {
      const code = (await readFile(args.path, "utf8"))
        .replace(/^const require = createRequire\(import\.meta\.url\);$/m, "")
        .replaceAll("createRequire(import.meta.url)", "require");
      return { contents: code, loader: "ts" };
    });
  },
};

/**
 * Packages compiled only when first required, from their own asset: @kubernetes/client-node is
 * most of the executable's JavaScript (17 MB of sources), and only `ferry agent` loads it (for
 * --kubernetes); in the main script it would slow every command's start-up.
 */
const LAZY_PACKAGES: Readonly<Record<string, string>> = {
  "@kubernetes/client-node": "lib/kubernetes-client-node.cjs",
};

/** A stand-in for a LAZY_PACKAGES package: compiles its asset on first require (CommonJS). */
function lazyPackageLoader(key: string): string {
  return `const { dirname, join } = require("node:path");
const filename = join(dirname(process.execPath), ${JSON.stringify(key)});
const compiled = require("node:vm").compileFunction(
  require("node:sea").getAsset(${JSON.stringify(key)}, "utf8"),
  ["exports", "require", "module", "__filename", "__dirname"],
  { filename },
);
const loaded = { exports: {} };
compiled(loaded.exports, require("node:module").createRequire(process.execPath), loaded, filename, dirname(filename));
module.exports = loaded.exports;
`;
}

const lazyPackages: Plugin = {
  name: "ferry-lazy-packages",
  setup(b) {
    const names = Object.keys(LAZY_PACKAGES).map((n) => n.replace(/[/.]/g, "\\$&"));
    b.onResolve({ filter: new RegExp(`^(${names.join("|")})$`) }, (args) => ({
      path: args.path,
      namespace: "ferry-lazy",
    }));
    b.onLoad({ filter: /.*/, namespace: "ferry-lazy" }, (args) => ({
      contents: lazyPackageLoader(LAZY_PACKAGES[args.path] as string),
      loader: "js",
    }));
  },
};

async function bundle(
  entry: { stdin: string } | { file: string },
  outfile: string,
  define: Record<string, string>,
  lazy = true,
): Promise<void> {
  await build({
    absWorkingDir: ROOT,
    ...("stdin" in entry
      ? {
          stdin: {
            contents: entry.stdin,
            resolveDir: ROOT,
            loader: "ts",
            sourcefile: "sea-main.ts",
          },
        }
      : { entryPoints: [entry.file] }),
    outfile,
    bundle: true,
    format: "cjs",
    platform: "node",
    target: "node24",
    define: { ...define, "import.meta.url": "__ferryModuleUrl" },
    banner: { js: 'var __ferryModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
    plugins: lazy ? [commonJs, lazyPackages] : [commonJs],
    legalComments: "none",
    logLevel: "error",
  });
}

/** .proto files parsed as @grpc/proto-loader parses them for src/runtime/ and src/snapshotter/ (keepCase). */
function protosJson(files: string[]): string {
  const root = new protobuf.Root();
  root.loadSync(files, { keepCase: true });
  return JSON.stringify(root.toJSON());
}

/** postject's inject(); a devDependency (NODE_PATH may point at another install of it). */
async function postjectInject(): Promise<
  (file: string, name: string, data: Buffer, options: { sentinelFuse: string }) => Promise<void>
> {
  const require = createRequire(join(ROOT, "package.json"));
  try {
    return (require(require.resolve("postject")) as { inject: never }).inject;
  } catch {
    throw new Error("postject is not installed: run `npm ci` (it is a devDependency)");
  }
}

export interface BuiltSea {
  file: string;
  bytes: number;
  assets: number;
}

export async function buildSea(out = OUT, codeCache = true): Promise<BuiltSea> {
  const inject = await postjectInject();
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const define = buildStampDefine();
    const main = join(tmp, "ferry.cjs");
    const worker = join(tmp, "sink-worker.js");
    const assets: Record<string, string> = {
      [EMBEDDED_PROTOS]: join(tmp, "protos.json"),
      [EMBEDDED_SNAPSHOTS_PROTO]: join(tmp, "snapshots-protos.json"),
      [EMBEDDED_WORKER]: worker,
    };
    const lazy = Object.entries(LAZY_PACKAGES).map(([name, key]) => {
      assets[key] = join(tmp, key);
      const reexport = `export * from ${JSON.stringify(name)};`;
      return bundle({ stdin: reexport }, assets[key], define, false);
    });
    const [webFiles] = await Promise.all([
      buildWeb(join(tmp, "web"), false),
      bundle({ stdin: ENTRY }, main, define),
      bundle({ file: "src/pull/sink-worker.ts" }, worker, define),
      writeFile(join(tmp, "protos.json"), protosJson(PROTO_FILES)),
      writeFile(join(tmp, "snapshots-protos.json"), protosJson([SNAPSHOTS_PROTO])),
      ...lazy,
    ]);
    for (const name of webFiles) assets[`web/${name}`] = join(tmp, "web", name);
    const blob = join(tmp, "sea-prep.blob");
    const config = {
      main,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: codeCache,
      assets,
    };
    await writeFile(join(tmp, "sea-config.json"), JSON.stringify(config, null, 2));
    await run(process.execPath, ["--experimental-sea-config", join(tmp, "sea-config.json")]);
    const exe = join(tmp, "ferry");
    await copyFile(process.execPath, exe);
    await chmod(exe, 0o755);
    await inject(exe, "NODE_SEA_BLOB", await readFile(blob), { sentinelFuse: SEA_FUSE });
    await mkdir(dirname(out), { recursive: true });
    await rename(exe, out);
    const { size } = await stat(out);
    return { file: out, bytes: size, assets: Object.keys(assets).length };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      output: { type: "string", short: "o" },
      "no-code-cache": { type: "boolean" },
    },
  });
  const out = values.output === undefined ? OUT : resolve(values.output);
  try {
    const built = await buildSea(out, values["no-code-cache"] !== true);
    process.stdout.write(
      `${relative(process.cwd(), built.file) || built.file}: ${(built.bytes / 1e6).toFixed(1)} MB, Node ${process.version}, ${built.assets} embedded assets\n`,
    );
  } catch (err) {
    process.stderr.write(`build-sea: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
