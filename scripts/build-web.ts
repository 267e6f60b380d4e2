/**
 * Builds the status page (src/web/app) into dist/web: esbuild bundles the TypeScript and
 * uPlot into assets/main-HASH.js and .css, and index.html names them. Written to a temporary
 * directory and swapped in, so a server never sees half a build. Typechecks the app first
 * (its own tsconfig, with the DOM library) unless --no-check.
 *
 *   node scripts/build-web.ts [--out DIR] [--no-check]
 */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const app = path.join(root, "src/web/app");
const args = process.argv.slice(2);
const outArg = args.indexOf("--out");
const out = path.resolve(outArg >= 0 ? (args[outArg + 1] ?? "") : path.join(root, "dist/web"));

export async function buildWeb(outDir: string, check: boolean): Promise<string[]> {
  if (check) {
    try {
      execFileSync(
        process.execPath,
        [path.join(root, "node_modules/typescript/bin/tsc"), "-p", app],
        {
          stdio: "inherit",
        },
      );
    } catch {
      throw new Error("the status page's TypeScript does not typecheck (see above)");
    }
  }
  const staging = `${outDir}.tmp-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  const result = await build({
    entryPoints: { main: path.join(app, "main.ts") },
    bundle: true,
    minify: true,
    sourcemap: false,
    format: "esm",
    target: ["chrome100", "firefox100", "safari15"],
    outdir: path.join(staging, "assets"),
    entryNames: "[name]-[hash]",
    assetNames: "[name]-[hash]",
    metafile: true,
    legalComments: "linked",
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
  const js = outputs.find((n) => n.endsWith(".js"));
  const css = outputs.find((n) => n.endsWith(".css"));
  if (js === undefined || css === undefined) throw new Error(`esbuild wrote ${outputs.join(", ")}`);
  const html = (await readFile(path.join(app, "index.html"), "utf8"))
    .replace("{{js}}", js)
    .replace("{{css}}", css);
  await writeFile(path.join(staging, "index.html"), html);
  await mkdir(path.dirname(outDir), { recursive: true });
  const old = `${outDir}.old-${process.pid}`;
  await rename(outDir, old).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
  await rename(staging, outDir);
  await rm(old, { recursive: true, force: true });
  return ["index.html", ...outputs.map((n) => `assets/${n}`)];
}

if (import.meta.filename === process.argv[1]) {
  const files = await buildWeb(out, !args.includes("--no-check")).catch((err: unknown) => {
    console.error(`build:web failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
  console.log(
    `status page built into ${path.relative(process.cwd(), out) || "."}: ${files.join(", ")}`,
  );
}
