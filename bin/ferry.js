#!/usr/bin/env node
// ferry runs from the bundle that `npm ci` builds (dist/cli, see scripts/build.ts) while it
// matches the sources, and from the TypeScript sources otherwise (Node's type stripping).
// Under a Node older than 24 (e.g. the system's `node` found by `#!/usr/bin/env node`) it
// runs itself again under the Node 24 that its `node` dependency installed.
// Built-ins by getBuiltinModule, not `import`: an ES import of node:fs reads all of its
// exports, and its `promises` getter alone loads a few dozen modules.
// (Node before 20.16 lacks it and gets the imports, then the version message below.)
const builtin = async (id) => process.getBuiltinModule?.(id) ?? (await import(id)).default;
const { readFileSync, statSync } = await builtin("node:fs");
const module = await builtin("node:module");
const { fileURLToPath } = await builtin("node:url");

const root = fileURLToPath(new URL("../", import.meta.url));

/** ferry is built and tested on this Node major; an older `node` hands over to it. */
const NODE_MAJOR = 24;

/**
 * The Node that the `node` dependency installed (node_modules/node/bin/node, in ferry's own
 * node_modules or hoisted above it), or undefined when there is none.
 */
function dependencyNode() {
  try {
    const manifest = module.createRequire(`${root}package.json`).resolve("node/package.json");
    const node = `${manifest.slice(0, -"package.json".length)}bin/node`;
    return statSync(node).isFile() ? node : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs this script again under `node` and exits as it does. Node 20 has no execve, so this
 * process stays as the parent and passes on the signals a service manager sends to its main
 * process; not SIGINT, which a terminal's Ctrl-C sends to the whole process group already.
 */
async function runUnder(node) {
  const { spawn } = await builtin("node:child_process");
  const args = [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  const child = spawn(node, args, { stdio: "inherit" });
  const forwarded = ["SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];
  for (const signal of forwarded) process.on(signal, () => child.kill(signal));
  process.on("SIGINT", () => {});
  child.once("error", (err) => {
    process.stderr.write(`ferry: cannot start ${node}: ${err.message}\n`);
    process.exit(2);
  });
  child.once("exit", (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    for (const s of [...forwarded, "SIGINT"]) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  });
}

/**
 * The bundle is used only if no source it was built from changed (or vanished) since, and
 * always in an installed package: npm ships no sources (package.json "files") and sets
 * every file's mtime to the time of install.
 */
function bundleIsCurrent() {
  if (process.env.FERRY_FROM_SOURCE) return false;
  try {
    statSync(`${root}src`);
  } catch {
    return true;
  }
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(`${root}dist/cli/inputs.json`, "utf8"));
    for (const file of inputs) {
      if (statSync(root + file).mtimeMs >= builtAt) return false;
    }
    return inputs.length > 0;
  } catch {
    return false;
  }
}

async function runFerry() {
  // Cache compiled code between runs: it halves start-up.
  module.enableCompileCache?.();
  let entry = "../dist/cli/main.js";
  if (!bundleIsCurrent()) {
    const [major, minor] = process.versions.node.split(".").map(Number);
    if (
      major < 22 ||
      (major === 22 && minor < 18 && !process.execArgv.includes("--experimental-strip-types"))
    ) {
      process.stderr.write(
        `ferry: Node ${process.versions.node} cannot run the TypeScript sources; run it with Node 24 (\`npm ci\` installs it into node_modules/.bin) or build the bundle with \`npm run build\`\n`,
      );
      process.exit(2);
    }
    entry = "../src/cli/main.ts";
  }
  const { main } = await import(entry);
  process.exitCode = await main(process.argv.slice(2));
}

const newer =
  Number(process.versions.node.split(".")[0]) < NODE_MAJOR ? dependencyNode() : undefined;
if (newer === undefined) await runFerry();
else await runUnder(newer);
