import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { buildCli, builtinsByGetter } from "../scripts/build.ts";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "..");

describe("the CLI bundle (scripts/build.ts)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ferry-build-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("bundles every command with the worker and the .proto files, and runs", async () => {
    const out = join(dir, "cli");
    const { inputs } = await buildCli(out);
    const files = await readdir(out);
    for (const f of ["main.js", "sink-worker.js", "cri.proto", "containerd-images.proto"]) {
      assert.ok(files.includes(f), `${f} is missing from the bundle: ${files.join(" ")}`);
    }
    const manifest = JSON.parse(await readFile(join(out, "inputs.json"), "utf8"));
    assert.equal(manifest.inputs.length, inputs);
    assert.ok(manifest.inputs.includes("src/cli/commands/pull.ts"));
    assert.ok(!manifest.inputs.some((f: string) => f.includes("node_modules")));
    // The bundle's main runs a command end to end (an empty store lists no images).
    const script = `const { main } = await import(${JSON.stringify(join(out, "main.js"))});
      process.exitCode = await main(["images", "--json", "--store", ${JSON.stringify(join(dir, "store"))}]);`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script]);
    assert.deepEqual(JSON.parse(stdout), []);
    // Built-ins are read with process.getBuiltinModule, never imported (see builtinsByGetter).
    for (const f of files.filter((name) => name.endsWith(".js"))) {
      const code = await readFile(join(out, f), "utf8");
      assert.doesNotMatch(code, /^import\s[^;]*"node:[^"]+";$/m, `${f} still imports a built-in`);
    }
  });

  it("rewrites every form of built-in import into process.getBuiltinModule reads (node:crypto's functions at their first call)", () => {
    const get = (id: string) => `process.getBuiltinModule("${id}")`;
    const input = [
      'import { createHash, X509Certificate, randomBytes as rb } from "node:crypto";',
      'import { join as join2, resolve } from "node:path";',
      'import tar from "tar-stream";',
      'import fs from "node:fs";',
      'import * as os from "node:os";',
      'import url, { fileURLToPath as toPath } from "node:url";',
      'import "node:process";',
      "import {",
      "  Agent,",
      "  request as request2",
      '} from "node:http";',
      'import { x } from "./chunk-ABC.js";',
      'const s = "import { a } from \\"node:fs\\";";',
    ].join("\n");
    // The reads are hoisted to the top, in order, as ES imports are; other lines stay put.
    assert.equal(
      builtinsByGetter(input),
      [
        [
          `const { X509Certificate } = ${get("node:crypto")};`,
          `const createHash = (...args) => ${get("node:crypto")}.createHash(...args);`,
          `const rb = (...args) => ${get("node:crypto")}.randomBytes(...args);`,
        ].join(" "),
        `const { join: join2, resolve } = ${get("node:path")};`,
        `const fs = ${get("node:fs")};`,
        `const os = ${get("node:os")};`,
        `const { fileURLToPath: toPath } = ${get("node:url")}; const url = ${get("node:url")};`,
        `${get("node:process")};`,
        `const { Agent, request: request2 } = ${get("node:http")};`,
        'import tar from "tar-stream";',
        'import { x } from "./chunk-ABC.js";',
        'const s = "import { a } from \\"node:fs\\";";',
      ].join("\n"),
    );
    assert.equal(
      builtinsByGetter('import { x } from "./y.js";\n'),
      'import { x } from "./y.js";\n',
    );
    assert.throws(() => builtinsByGetter('import { a-b } from "node:fs";'), /cannot rewrite/);
  });

  it("bin/ferry.js uses the bundle only while no source it was built from has changed", async () => {
    // A miniature checkout: bin/ferry.js, a bundle and a source entry that say which ran.
    const root = join(dir, "checkout");
    await mkdir(join(root, "bin"), { recursive: true });
    await mkdir(join(root, "dist", "cli"), { recursive: true });
    await mkdir(join(root, "src", "cli"), { recursive: true });
    await copyFile(join(ROOT, "bin", "ferry.js"), join(root, "bin", "ferry.js"));
    const entry = (who: string) =>
      `export async function main() { process.stdout.write("${who}"); return 0; }\n`;
    await writeFile(join(root, "dist", "cli", "main.js"), entry("bundle"));
    await writeFile(join(root, "src", "cli", "main.ts"), entry("source"));
    await writeFile(join(root, "src", "cli", "other.ts"), "export {};\n");
    const past = new Date(Date.now() - 60_000);
    for (const f of ["main.ts", "other.ts"]) await utimes(join(root, "src", "cli", f), past, past);
    await writeFile(
      join(root, "dist", "cli", "inputs.json"),
      JSON.stringify({
        builtAt: Date.now() - 30_000,
        inputs: ["src/cli/main.ts", "src/cli/other.ts"],
      }),
    );
    const { FERRY_FROM_SOURCE: _, ...clean } = process.env;
    const ferry = async (env: NodeJS.ProcessEnv) =>
      (await run(process.execPath, [join(root, "bin", "ferry.js")], { env })).stdout;
    assert.equal(await ferry(clean), "bundle");
    assert.equal(await ferry({ ...clean, FERRY_FROM_SOURCE: "1" }), "source");
    await utimes(join(root, "src", "cli", "other.ts"), new Date(), new Date()); // edited after the build
    assert.equal(await ferry(clean), "source");
    await rm(join(root, "src", "cli", "other.ts")); // a source the bundle was built from is gone
    assert.equal(await ferry(clean), "source");
  });
});
