// Runs ferry as a user would: `node bin/ferry.js ARGS`, in a child process, output captured.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { until } from "../fixtures/until.ts";

export { until };

export const FERRY_BIN = fileURLToPath(new URL("../../bin/ferry.js", import.meta.url));

export interface FerryResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface FerryProcess {
  child: ChildProcess;
  /** Settles when the process has exited and its output is closed. */
  result: Promise<FerryResult>;
}

// ferry processes still running when the test process exits go with it.
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export interface RunOptions {
  /** Written to ferry's stdin, which is then closed; without it stdin is not connected. */
  stdin?: string;
}

/**
 * Starts `ferry ARGS` without waiting for it. `FERRY_STORE` is cleared so only --store counts;
 * `env` is laid over this process's environment, and a key given as undefined is removed.
 */
export function startFerry(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: RunOptions = {},
): FerryProcess {
  const { FERRY_STORE: _ignored, ...inherited } = process.env;
  const merged: NodeJS.ProcessEnv = { ...inherited, ...env };
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries(merged)) if (value !== undefined) childEnv[key] = value;
  const child = spawn(process.execPath, [FERRY_BIN, ...args], {
    env: childEnv,
    stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (options.stdin !== undefined) {
    // ferry may exit without reading its input: that is its answer, not a test failure.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.stdin);
  }
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on("data", (c: Buffer) => stdout.push(c));
  child.stderr?.on("data", (c: Buffer) => stderr.push(c));
  const result = new Promise<FerryResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      }),
    );
  });
  return { child, result };
}

/** Runs `ferry ARGS` to completion. */
export function ferry(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: RunOptions = {},
): Promise<FerryResult> {
  return startFerry(args, env, options).result;
}

/**
 * The environment of a ferry process that sees only the credentials and config a test gives
 * it: HOME and DOCKER_CONFIG (HOME/.docker) in `home`, and none of the variables that would
 * point it at the machine's own files (podman's auth files, XDG config, FERRY_CONFIG).
 */
export function isolatedEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    HOME: home,
    DOCKER_CONFIG: join(home, ".docker"),
    XDG_CONFIG_HOME: undefined,
    XDG_RUNTIME_DIR: undefined,
    REGISTRY_AUTH_FILE: undefined,
    FERRY_CONFIG: undefined,
    ...extra,
  };
}

/** For assertion messages: what ferry said. */
export function describeRun(r: FerryResult): string {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

export function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Parses NDJSON output, one object per line. */
export function ndjson(text: string): Array<Record<string, unknown>> {
  return lines(text).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `ferry-${prefix}-`));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/** Docker's short layer id: the first 12 hex digits. */
export function shortId(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);
}

export interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export const REF_NAME = "org.opencontainers.image.ref.name";

/** The store's index.json, parsed (throws if it is not JSON). */
export async function readStoreIndex(
  store: string,
): Promise<{ schemaVersion: number; manifests: IndexEntry[] }> {
  return JSON.parse(await readFile(join(store, "index.json"), "utf8")) as {
    schemaVersion: number;
    manifests: IndexEntry[];
  };
}

export async function entriesFor(store: string, reference: string): Promise<IndexEntry[]> {
  const index = await readStoreIndex(store);
  return index.manifests.filter((m) => m.annotations?.[REF_NAME] === reference);
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** Digests of the store's blobs (file names), after checking each re-hashes to its name. */
export async function verifiedBlobs(store: string): Promise<string[]> {
  const dir = join(store, "blobs", "sha256");
  const names = (await readdir(dir)).sort();
  const bad: string[] = [];
  for (const name of names) {
    const digest = `sha256:${name}`;
    if ((await hashFile(join(dir, name))) !== digest) bad.push(name);
  }
  if (bad.length > 0) throw new Error(`blobs that do not hash to their name: ${bad.join(", ")}`);
  return names.map((n) => `sha256:${n}`);
}

/** Files in STORE/ferry/ingest (partials and locks). */
export async function ingestFiles(store: string): Promise<string[]> {
  return (await readdir(join(store, "ferry", "ingest")).catch(() => [] as string[])).sort();
}

/**
 * Waits until a running ferry's output so far (`log()`) matches `pattern` and gives the first
 * capture group (or the whole match); fails with the output if ferry exits first.
 */
export function untilLogged(
  what: string,
  proc: FerryProcess,
  log: () => string,
  pattern: RegExp,
  ms = 30_000,
): Promise<string> {
  return until(
    what,
    () => {
      const found = pattern.exec(log());
      if (found) return found[1] ?? found[0];
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        assert.fail(`ferry exited before ${what}:\n${log()}`);
      }
      return undefined;
    },
    ms,
    { context: log },
  );
}
