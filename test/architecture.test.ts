/**
 * The dependency guard: imports under src/ must follow the module table of
 * docs/architecture.md, which this test reads (that file is the rules; there is no copy here).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";

type MayImport = readonly string[] | "anything";
type ModuleTable = Readonly<Record<string, MayImport>>;

/** Every module may import it; it imports no other module. */
const UNIVERSAL_LEAF = "observe";
/** Nothing may import it. */
const ENTRY_POINT = "cli";
/** The one module allowed to spell Docker Hub's names. */
const DOCKER_HUB_OWNER = "reference";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");
const ARCHITECTURE_MD = path.join(REPO_ROOT, "docs", "architecture.md");

interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly message: string;
}

interface Edge {
  readonly file: string;
  readonly specifier: string;
}

interface ImportReport {
  readonly violations: readonly Violation[];
  /** Module → imported module → one import that makes the edge. */
  readonly edges: ReadonlyMap<string, ReadonlyMap<string, Edge>>;
}

/** Node → next node → one import that makes the edge; nodes are modules or files. */
type Graph = Map<string, Map<string, Edge>>;

function addEdge(graph: Graph, from: string, to: string, edge: Edge): void {
  const out = graph.get(from) ?? new Map<string, Edge>();
  if (!out.has(to)) out.set(to, edge);
  graph.set(from, out);
}

// ---- reading the table out of docs/architecture.md ----

function parseModuleTable(markdown: string): ModuleTable {
  const table: Record<string, MayImport> = {};
  const start = markdown.indexOf("## Modules");
  assert.ok(start >= 0, 'docs/architecture.md has a "## Modules" section');
  const section = markdown.slice(start).split(/\n## /)[0] ?? "";
  for (const line of section.split("\n")) {
    const cells = line.split("|").map((cell) => cell.trim());
    const name = /^`([a-z]+)\/`$/.exec(cells[1] ?? "")?.[1];
    if (name === undefined) continue;
    assert.equal(table[name], undefined, `the module table has two rows for ${name}/`);
    const mayImport = cells[3] ?? "";
    table[name] = /\banything\b/.test(mayImport)
      ? "anything"
      : [...mayImport.matchAll(/`([a-z]+)\/?`/g)].map((match) => match[1] ?? "");
  }
  return table;
}

/** The rules this test enforces; a checkout without the file fails here, never skips. */
function readModuleTable(): ModuleTable {
  assert.ok(
    existsSync(ARCHITECTURE_MD),
    `${ARCHITECTURE_MD} is missing: its "## Modules" table is the import rules`,
  );
  return parseModuleTable(readFileSync(ARCHITECTURE_MD, "utf8"));
}

const MODULE_TABLE: ModuleTable = readModuleTable();

// ---- the checker: pure, over a map of repo-relative path → source ----

function importSpecifiers(source: string): string[] {
  // The TypeScript scanner sees static imports, `export … from`, `import type`,
  // side-effect imports and `import("…")`, and skips comments and strings.
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/**
 * The files a source loads when it is loaded: static imports and re-exports that bring a
 * value. `import type` is erased and `import()` loads later, so neither makes a load cycle.
 */
function valueImportSpecifiers(file: string, source: string): string[] {
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, false);
  const specifiers: string[] = [];
  for (const statement of sourceFile.statements) {
    if (ts.isImportDeclaration(statement) && ts.isStringLiteral(statement.moduleSpecifier)) {
      if (!typeOnlyImport(statement.importClause)) specifiers.push(statement.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(statement) &&
      statement.moduleSpecifier !== undefined &&
      ts.isStringLiteral(statement.moduleSpecifier) &&
      !statement.isTypeOnly &&
      !(
        statement.exportClause !== undefined &&
        ts.isNamedExports(statement.exportClause) &&
        statement.exportClause.elements.every((e) => e.isTypeOnly)
      )
    ) {
      specifiers.push(statement.moduleSpecifier.text);
    }
  }
  return specifiers;
}

function typeOnlyImport(clause: ts.ImportClause | undefined): boolean {
  if (clause === undefined) return false; // a side-effect import
  if (clause.isTypeOnly) return true;
  const bindings = clause.namedBindings;
  return (
    clause.name === undefined &&
    bindings !== undefined &&
    ts.isNamedImports(bindings) &&
    bindings.elements.every((e) => e.isTypeOnly)
  );
}

function moduleOf(file: string): string | undefined {
  const parts = file.split("/");
  return parts[0] === "src" && parts.length > 2 ? parts[1] : undefined;
}

function checkImports(files: ReadonlyMap<string, string>, table: ModuleTable): ImportReport {
  const violations: Violation[] = [];
  const edges: Graph = new Map();
  /** Imports between files of the same module (a cycle there is one too). */
  const fileEdges: Graph = new Map();
  for (const [file, source] of files) {
    const from = moduleOf(file);
    if (from === undefined) continue;
    if (table[from] === undefined) {
      violations.push({
        file,
        specifier: "",
        message: `src/${from}/ is not a module in docs/architecture.md's table`,
      });
      continue;
    }
    for (const specifier of importSpecifiers(source)) {
      if (!specifier.startsWith(".")) continue; // packages and node: built-ins
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      if (!target.startsWith("src/")) continue;
      const to = moduleOf(target);
      const problem = importProblem(from, to, target, table);
      if (problem !== undefined) violations.push({ file, specifier, message: problem });
      if (to !== undefined && to !== from) addEdge(edges, from, to, { file, specifier });
    }
    for (const specifier of valueImportSpecifiers(file, source)) {
      if (!specifier.startsWith(".")) continue;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
      if (moduleOf(target) === from) addEdge(fileEdges, file, target, { file, specifier });
    }
  }
  for (const cycle of findCycles(fileEdges)) {
    const steps = cycle.map((file, i) => {
      const next = cycle[(i + 1) % cycle.length] ?? "";
      return `${file} imports "${fileEdges.get(file)?.get(next)?.specifier}"`;
    });
    violations.push({
      file: cycle[0] ?? "",
      specifier: fileEdges.get(cycle[0] ?? "")?.get(cycle[1 % cycle.length] ?? "")?.specifier ?? "",
      message: `import cycle between files of ${moduleOf(cycle[0] ?? "")}/: ${steps.join("; ")}`,
    });
  }
  for (const cycle of findCycles(edges)) {
    const steps = cycle.map((module, i) => {
      const next = cycle[(i + 1) % cycle.length] ?? "";
      const edge = edges.get(module)?.get(next);
      return `${module} → ${next} (${edge?.file} imports "${edge?.specifier}")`;
    });
    const first = edges.get(cycle[0] ?? "")?.get(cycle[1 % cycle.length] ?? "");
    violations.push({
      file: first?.file ?? "",
      specifier: first?.specifier ?? "",
      message: `import cycle between modules: ${steps.join("; ")}`,
    });
  }
  return { violations, edges };
}

function importProblem(
  from: string,
  to: string | undefined,
  target: string,
  table: ModuleTable,
): string | undefined {
  if (to === undefined) return `imports ${target}, which is outside every module`;
  if (to === from) return undefined;
  if (to === ENTRY_POINT) return `nothing may import ${ENTRY_POINT}/ (${from}/ does)`;
  if (table[to] === undefined)
    return `imports src/${to}/, which is not a module in docs/architecture.md's table`;
  const allowed = table[from] ?? [];
  if (target !== `src/${to}/index.ts`) {
    return `imports ${to}/'s internal file ${target}; import src/${to}/index.ts, the module's public surface`;
  }
  if (to === UNIVERSAL_LEAF || allowed === "anything" || allowed.includes(to)) return undefined;
  const list = allowed.filter((m) => m !== UNIVERSAL_LEAF);
  return `${from}/ may not import ${to}/ (docs/architecture.md allows ${from}/ only: ${list.length === 0 ? "nothing but observe" : [...list, UNIVERSAL_LEAF].join(", ")})`;
}

/** Each elementary cycle found by depth-first search, rotated to start at its least name. */
function findCycles(edges: ReadonlyMap<string, ReadonlyMap<string, Edge>>): string[][] {
  const cycles = new Map<string, string[]>();
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, "open");
    stack.push(node);
    for (const next of edges.get(node)?.keys() ?? []) {
      if (state.get(next) === "open") {
        const cycle = stack.slice(stack.indexOf(next));
        const least = cycle.indexOf([...cycle].sort()[0] ?? "");
        const rotated = [...cycle.slice(least), ...cycle.slice(0, least)];
        cycles.set(rotated.join(" "), rotated);
      } else if (state.get(next) === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of [...edges.keys()].sort()) if (state.get(node) === undefined) visit(node);
  return [...cycles.values()];
}

/** String literals (not comments) in non-test files outside reference/ that spell docker.io. */
function dockerHubSpellings(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  for (const [file, source] of files) {
    const module = moduleOf(file);
    if (module === undefined || module === DOCKER_HUB_OWNER || file.endsWith(".test.ts")) continue;
    const sourceFile = ts.createSourceFile(
      file,
      source,
      ts.ScriptTarget.Latest,
      false,
      ts.ScriptKind.TS,
    );
    const walk = (node: ts.Node): void => {
      if (
        (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) &&
        /docker\.io/i.test(node.text)
      ) {
        violations.push({
          file,
          specifier: node.text,
          message: `spells Docker Hub's name; use DEFAULT_DOMAIN, isDockerHub() or apiHost() from src/${DOCKER_HUB_OWNER}/index.ts`,
        });
      }
      ts.forEachChild(node, walk);
    };
    walk(sourceFile);
  }
  return violations;
}

// ---- the real tree ----

function listTsFiles(directory: string): string[] {
  if (!existsSync(directory)) return [];
  return readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function sourceFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const absolute of listTsFiles(path.join(REPO_ROOT, "src"))) {
    const relative = path.relative(REPO_ROOT, absolute).split(path.sep).join("/");
    files.set(relative, readFileSync(absolute, "utf8"));
  }
  return files;
}

function describeViolations(violations: readonly Violation[]): string {
  return violations
    .map((v) => `  ${v.file}${v.specifier === "" ? "" : ` ("${v.specifier}")`}: ${v.message}`)
    .join("\n");
}

describe("architecture", () => {
  it("docs/architecture.md's module table is read and names only its own modules", () => {
    assert.ok(Object.keys(MODULE_TABLE).length >= 10, "the markdown table was found and read");
    assert.equal(MODULE_TABLE[ENTRY_POINT], "anything", `${ENTRY_POINT}/ is the entry point`);
    assert.deepEqual(MODULE_TABLE[UNIVERSAL_LEAF], [], `${UNIVERSAL_LEAF}/ is a leaf`);
    for (const [module, may] of Object.entries(MODULE_TABLE)) {
      if (may === "anything") continue;
      const unknown = may.filter((to) => MODULE_TABLE[to] === undefined);
      assert.deepEqual(unknown, [], `${module}/ may import modules the table lacks`);
    }
  });

  it("the table itself has no cycles and nobody may import cli", () => {
    const edges = new Map<string, Map<string, Edge>>();
    for (const [module, may] of Object.entries(MODULE_TABLE)) {
      if (may === "anything") continue;
      assert.ok(!may.includes(ENTRY_POINT), `${module} lists cli`);
      edges.set(module, new Map(may.map((to) => [to, { file: "table", specifier: to }])));
    }
    assert.deepEqual(findCycles(edges), []);
  });

  it("every directory under src/ is a module in the table", () => {
    const directories = readdirSync(path.join(REPO_ROOT, "src"), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    const unknown = directories.filter((name) => MODULE_TABLE[name] === undefined);
    assert.deepEqual(unknown, [], "add new modules to docs/architecture.md's table");
  });

  it("every module in the table is a directory under src/", () => {
    const stale = Object.keys(MODULE_TABLE).filter(
      (name) => !existsSync(path.join(REPO_ROOT, "src", name)),
    );
    assert.deepEqual(stale, [], "remove modules that no longer exist from docs/architecture.md");
  });

  it("every module's index.ts opens with a comment saying what the module is for", () => {
    const silent = Object.keys(MODULE_TABLE).filter((name) => {
      const index = path.join(REPO_ROOT, "src", name, "index.ts");
      return name !== ENTRY_POINT && !/^\/[*/]/.test(readFileSync(index, "utf8"));
    });
    assert.deepEqual(
      silent,
      [],
      "open these index.ts files with one comment (docs/architecture.md)",
    );
  });

  it("imports under src/ follow the table: allowed modules, through index.ts, no cli, no cycles between modules or between a module's files", () => {
    const files = sourceFiles();
    const { violations } = checkImports(files, MODULE_TABLE);
    assert.equal(violations.length, 0, `import rules broken:\n${describeViolations(violations)}`);
  });

  it("only reference/ spells docker.io", () => {
    const violations = dockerHubSpellings(sourceFiles());
    assert.equal(
      violations.length,
      0,
      `Docker Hub spelled outside reference/:\n${describeViolations(violations)}`,
    );
  });
});

describe("architecture checker (self-test on fixtures)", () => {
  const fixture = (entries: Record<string, string>): Map<string, string> =>
    new Map(Object.entries(entries));

  it("passes allowed imports, and ignores comments, strings and packages", () => {
    const { violations, edges } = checkImports(
      fixture({
        "src/pull/plan.ts": [
          'import type { Manifest } from "../oci/index.ts";',
          'import { Store } from "../store/index.ts";',
          'export { parseReference } from "../reference/index.ts";',
          'import { FerryError } from "../observe/index.ts";',
          'import { helper } from "./helper.ts";',
          'import { z } from "zod";',
          'import { readFile } from "node:fs/promises";',
          'const lazy = await import("../registry/index.ts");',
          '// import { run } from "../cli/index.ts";',
          "const text = \"import { x } from '../mirror/index.ts'\";",
        ].join("\n"),
        "src/cli/main.ts": 'import { pull } from "../pull/index.ts";\nimport "../agent/index.ts";',
        "src/reference/parse.ts": 'import { FerryError } from "../observe/index.ts";',
      }),
      MODULE_TABLE,
    );
    assert.deepEqual(violations, []);
    assert.deepEqual([...(edges.get("pull")?.keys() ?? [])].sort(), [
      "observe",
      "oci",
      "reference",
      "registry",
      "store",
    ]);
  });

  it("catches a forbidden module, an internal file, an import of cli, and a dynamic import", () => {
    const { violations } = checkImports(
      fixture({
        "src/reference/parse.ts": 'import { client } from "../registry/index.ts";',
        "src/pull/plan.ts": 'import { ingest } from "../store/ingest.ts";',
        "src/store/deep/gc.ts": 'export * from "../../cli/index.ts";',
        "src/digest/hash.ts": 'const m = await import("../oci/index.ts");',
        "src/oci/index.ts":
          'import { x } from "../nowhere/index.ts";\nimport { y } from "../stray.ts";',
        "src/stray/x.ts": "export const x = 1;",
      }),
      MODULE_TABLE,
    );
    const found = violations.map((v) => `${v.file} ${v.specifier} :: ${v.message}`);
    const expectOne = (pattern: RegExp): void => {
      assert.equal(
        found.filter((line) => pattern.test(line)).length,
        1,
        `${pattern} in\n${found.join("\n")}`,
      );
    };
    expectOne(
      /^src\/reference\/parse\.ts \.\.\/registry\/index\.ts :: reference\/ may not import registry\//,
    );
    expectOne(
      /^src\/pull\/plan\.ts \.\.\/store\/ingest\.ts :: imports store\/'s internal file src\/store\/ingest\.ts/,
    );
    expectOne(/^src\/store\/deep\/gc\.ts \.\.\/\.\.\/cli\/index\.ts :: nothing may import cli\//);
    expectOne(/^src\/digest\/hash\.ts \.\.\/oci\/index\.ts :: digest\/ may not import oci\//);
    expectOne(
      /^src\/oci\/index\.ts \.\.\/nowhere\/index\.ts :: imports src\/nowhere\/, which is not a module/,
    );
    expectOne(
      /^src\/oci\/index\.ts \.\.\/stray\.ts :: imports src\/stray\.ts, which is outside every module/,
    );
    expectOne(/^src\/stray\/x\.ts {2}:: src\/stray\/ is not a module/);
    assert.equal(violations.length, 7, found.join("\n"));
  });

  it("catches an import cycle between modules and names the imports that make it", () => {
    const permissive: ModuleTable = { a: ["b"], b: ["c"], c: ["a"], d: [] };
    const { violations } = checkImports(
      fixture({
        "src/a/index.ts": 'export * from "../b/index.ts";',
        "src/b/index.ts": 'import { c } from "../c/index.ts";',
        "src/c/deep/x.ts": 'import type { A } from "../../a/index.ts";',
        "src/d/index.ts": "export const d = 1;",
      }),
      permissive,
    );
    assert.equal(violations.length, 1, describeViolations(violations));
    assert.match(
      violations[0]?.message ?? "",
      /^import cycle between modules: a → b \(src\/a\/index\.ts imports "\.\.\/b\/index\.ts"\); b → c .*; c → a \(src\/c\/deep\/x\.ts imports "\.\.\/\.\.\/a\/index\.ts"\)$/,
    );
  });

  it("catches an import cycle between files of one module and names its imports", () => {
    const { violations } = checkImports(
      fixture({
        "src/registry/a.ts": 'import { b } from "./b.ts";',
        "src/registry/b.ts": 'import { type C, c } from "./deep/c.ts";',
        "src/registry/deep/c.ts": 'export { a } from "../a.ts";',
        "src/registry/d.ts": 'import { a } from "./a.ts";',
        // Erased or loaded later: no load cycle.
        "src/registry/e.ts": 'import type { F } from "./f.ts";\nexport const e = 1;',
        "src/registry/f.ts": 'import { e } from "./e.ts";\nexport type F = 1;',
        "src/registry/g.ts": 'import { type H } from "./h.ts";\nexport const g = 1;',
        "src/registry/h.ts": 'import { g } from "./g.ts";\nexport type H = 1;',
        "src/registry/i.ts": 'export type { J } from "./j.ts";\nexport const i = 1;',
        "src/registry/j.ts": 'import { i } from "./i.ts";\nexport type J = 1;',
        "src/registry/k.ts": 'const l = await import("./l.ts");\nexport const k = 1;',
        "src/registry/l.ts": 'import { k } from "./k.ts";',
      }),
      MODULE_TABLE,
    );
    assert.equal(violations.length, 1, describeViolations(violations));
    assert.equal(
      violations[0]?.message,
      'import cycle between files of registry/: src/registry/a.ts imports "./b.ts"; src/registry/b.ts imports "./deep/c.ts"; src/registry/deep/c.ts imports "../a.ts"',
    );
  });

  it("reads the markdown table, treating '—' as nothing and 'anything above' as anything", () => {
    const table = parseModuleTable(
      [
        "# x",
        "## Modules (`src/`)",
        "| module | owns | may import | why those |",
        "|---|---|---|---|",
        "| `reference/` | grammar; `docker.io`, `library/` | — | a leaf |",
        "| `oci/` | media types | `digest` | descriptors carry `digest`s, not `store/` |",
        "| `web/` | page | `observe` (server side); the front end imports nothing of ferry | |",
        "| `cli/` | commands | anything above; nothing imports `cli` | the entry point |",
        "## Outside `src/`",
        "| `later/` | not the module table | `cli` |",
      ].join("\n"),
    );
    assert.deepEqual(table, { reference: [], oci: ["digest"], web: ["observe"], cli: "anything" });
  });

  it("finds Docker Hub spelled in string literals but not in comments or tests", () => {
    const violations = dockerHubSpellings(
      fixture({
        "src/config/auth.ts":
          '// docker.io is normalized in reference\nconst key = "https://index.docker.io/v1/";\n' +
          "const t = `$" +
          "{host}.docker.io`;",
        "src/config/auth.test.ts": 'const x = "docker.io";',
        "src/reference/constants.ts": 'export const DEFAULT_DOMAIN = "docker.io";',
      }),
    );
    assert.deepEqual(
      violations.map((v) => [v.file, v.specifier]),
      [
        ["src/config/auth.ts", "https://index.docker.io/v1/"],
        ["src/config/auth.ts", ".docker.io"],
      ],
    );
  });
});
