/**
 * Fixtures for the tests beside this file (not exported from index.ts): temp
 * directories, and a real credential helper, `docker-credential-ferrytest`, a
 * shell script that keeps one JSON document per server in a directory.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ferry-config-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// Behaviour switches: FERRYTEST_FAIL=stderr (fail, echoing the input to stderr),
// FERRYTEST_FAIL=json (fail with a stored document on stdout), FERRYTEST_SLEEP=1 (hang).
const HELPER_SCRIPT = `#!/bin/sh
set -u
store="$FERRYTEST_STORE"
action="$1"
input="$(cat)"
if [ "\${FERRYTEST_SLEEP:-}" = 1 ]; then exec sleep 30; fi
case "\${FERRYTEST_FAIL:-}" in
  stderr) echo "ferrytest: vault sealed; request was: $input" >&2; exit 1 ;;
  json) cat "$store"/*.json 2>/dev/null; exit 1 ;;
esac
if [ "$action" = store ]; then
  server="$(printf '%s' "$input" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')"
else
  server="$input"
fi
echo "$action $server" >> "$store/calls.log"
file="$store/$(printf '%s' "$server" | od -An -tx1 | tr -d ' \\n').json"
case "$action" in
  get) if [ -f "$file" ]; then cat "$file"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) printf '%s' "$input" > "$file" ;;
  erase) if [ -f "$file" ]; then rm "$file"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
`;

export interface FakeHelper {
  /** Environment whose PATH finds the helper (and nothing else of the test's making). */
  readonly env: NodeJS.ProcessEnv;
  /** Puts a credential into the helper's store, as `docker login` would have. */
  put(serverUrl: string, username: string, secret: string): Promise<void>;
  /** The "action server" lines of every call so far. */
  calls(): Promise<string[]>;
  /** Whether the helper holds anything for serverUrl. */
  holds(serverUrl: string): Promise<boolean>;
}

export async function installFakeHelper(
  dir: string,
  env: NodeJS.ProcessEnv = {},
): Promise<FakeHelper> {
  const bin = join(dir, "bin");
  const store = join(dir, "helper-store");
  await mkdir(bin, { recursive: true });
  await mkdir(store, { recursive: true });
  const program = join(bin, "docker-credential-ferrytest");
  await writeFile(program, HELPER_SCRIPT);
  await chmod(program, 0o755);
  const fileOf = (server: string) => join(store, `${Buffer.from(server).toString("hex")}.json`);
  return {
    env: { ...env, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, FERRYTEST_STORE: store },
    put: (serverUrl, username, secret) =>
      writeFile(
        fileOf(serverUrl),
        JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret }),
      ),
    calls: async () => {
      const log = await readFile(join(store, "calls.log"), "utf8").catch(() => "");
      return log.split("\n").filter((line) => line !== "");
    },
    holds: async (serverUrl) =>
      readFile(fileOf(serverUrl)).then(
        () => true,
        () => false,
      ),
  };
}

/** Writes a JSON file, creating its directory. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(join(path, ".."), { recursive: true });
  await writeFile(path, JSON.stringify(value, null, 2));
}
