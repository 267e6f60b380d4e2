// The repeat-pull target (150 ms including process start) leaves no room for heavy packages
// on the path of everyday commands: they must be loaded with `await import()` where used.
// This walks the static imports (not `import type`, not dynamic imports) from each command.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describe, it } from "node:test";

const ROOT = resolve(import.meta.dirname, "..");
/** Packages that cost tens of milliseconds (or seconds) to load. */
const HEAVY = [
  "@kubernetes/client-node",
  "@grpc/grpc-js",
  "@grpc/proto-loader",
  "zod",
  "yaml",
  "undici",
  "esbuild",
  "playwright-core",
  "croner",
  "tar-stream",
];
const EVERYDAY = ["pull", "images", "inspect", "rm"];
/**
 * Built-ins whose ESM import evaluates every export of their facade, including the lazy ones
 * that load Node's bundled undici (~40 ms): take them with createRequire() instead.
 */
const HEAVY_BUILTINS = ["node:http", "node:https", "node:http2"];

const STATIC_IMPORT = /^\s*(?:import|export)\s+(?!type\b)(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/gm;

/** Every bare package a module reaches through static imports, with one path to it. */
function reach(entry: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const seen = new Set<string>();
  const walk = (file: string, path: string[]) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, "utf8");
    for (const match of source.matchAll(STATIC_IMPORT)) {
      const spec = match[1] as string;
      if (spec.startsWith(".")) walk(resolve(dirname(file), spec), [...path, spec]);
      else if (!found.has(spec)) found.set(spec, [...path, spec]);
    }
  };
  walk(entry, [entry.slice(ROOT.length + 1)]);
  return found;
}

describe("start-up of everyday commands", () => {
  for (const command of EVERYDAY) {
    it(`ferry ${command} loads no heavy package before it needs one`, () => {
      const reached = reach(resolve(ROOT, "src/cli/commands", `${command}.ts`));
      const heavy = [...reached].filter(
        ([spec]) =>
          HEAVY_BUILTINS.includes(spec) ||
          HEAVY.some((h) => spec === h || spec.startsWith(`${h}/`)),
      );
      assert.deepEqual(
        heavy.map(([spec, path]) => `${spec} via ${path.join(" -> ")}`),
        [],
        "load these with `await import()` (packages) or createRequire() (built-ins) where they are used",
      );
    });
  }
});
