#!/usr/bin/env node
// ferry runs its TypeScript sources directly (Node's type stripping): Node 22.18+ or 23.6+.
import module from "node:module";

const [major, minor] = process.versions.node.split(".").map(Number);
if (
  major < 22 ||
  (major === 22 && minor < 18 && !process.execArgv.includes("--experimental-strip-types"))
) {
  process.stderr.write(
    `ferry: Node ${process.versions.node} is too old; run it with Node 24 (\`npm ci\` installs it into node_modules/.bin)\n`,
  );
  process.exit(2);
}
// Cache compiled (and type-stripped) code between runs: halves start-up.
module.enableCompileCache?.();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
