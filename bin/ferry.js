#!/usr/bin/env node
// ferry runs from the bundle that `npm ci` builds (dist/cli, see scripts/build.ts) while it
// matches the sources, and from the TypeScript sources otherwise (Node's type stripping).
// Built-ins by getBuiltinModule, not `import`: an ES import of node:fs reads all of its
// exports, and its `promises` getter alone loads a few dozen modules.
// (Node before 20.16 lacks it and gets the imports, then the version message below.)
const builtin = async (id) => process.getBuiltinModule?.(id) ?? (await import(id)).default;
const { readFileSync, statSync } = await builtin("node:fs");
const module = await builtin("node:module");
const { fileURLToPath } = await builtin("node:url");

// Cache compiled code between runs: it halves start-up.
module.enableCompileCache?.();

const root = fileURLToPath(new URL("../", import.meta.url));

/** The bundle is used only if no source it was built from changed (or vanished) since. */
function bundleIsCurrent() {
  if (process.env.FERRY_FROM_SOURCE) return false;
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
