/**
 * Docker's credential-helper protocol: `docker-credential-NAME get|store|erase`,
 * with the request on stdin and the answer on stdout. Secrets never reach an
 * error message: a helper's stdout is quoted only when it is not JSON, and
 * anything the helper echoes back of a secret is cut out.
 */
import { createRequire } from "node:module";
import { FerryError } from "../observe/index.ts";
import type { Credential } from "./credentials.ts";

/** child_process is loaded when a helper runs: most pulls never run one. */
const requireBuiltin = createRequire(import.meta.url);

export const HELPER_PREFIX = "docker-credential-";
/** Username with which helpers mark the Secret as an identity token. */
const TOKEN_USERNAME = "<token>";
const NOT_FOUND = "credentials not found";
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;
const MAX_QUOTED_CHARS = 500;

export interface HelperOptions {
  /** Environment of the helper process; its PATH finds the helper. Default: process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the helper after this long; default 30 s. */
  readonly timeoutMs?: number;
}

type Action = "get" | "store" | "erase";

interface HelperRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The credential the helper keeps for `serverUrl`, or undefined when it has none. */
export async function helperGet(
  name: string,
  serverUrl: string,
  options: HelperOptions = {},
): Promise<Credential | undefined> {
  const run = await runHelper(name, "get", serverUrl, serverUrl, options);
  if (run.code !== 0) {
    if (isNotFound(run)) return undefined;
    throw helperFailed(name, "get", serverUrl, run, []);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(run.stdout);
  } catch {
    answer = undefined;
  }
  const { Username: username, Secret: secret } = (answer ?? {}) as Record<string, unknown>;
  if (typeof secret !== "string" || (username !== undefined && typeof username !== "string")) {
    throw new FerryError(
      "FERRY_CREDENTIAL_HELPER",
      `credential helper ${HELPER_PREFIX}${name} answered "get" for ${serverUrl} with something other than {"Username","Secret"} JSON`,
      { hint: helperHint(name), fields: { helper: name, action: "get", serverUrl } },
    );
  }
  if (secret === "") return undefined;
  if (username === TOKEN_USERNAME) return { identityToken: secret };
  return { username: username ?? "", password: secret };
}

/** Hands a credential to the helper to keep. */
export async function helperStore(
  name: string,
  serverUrl: string,
  credential: Credential,
  options: HelperOptions = {},
): Promise<void> {
  const secret = "password" in credential ? credential.password : credential.identityToken;
  const username = "password" in credential ? credential.username : TOKEN_USERNAME;
  const input = JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret });
  const run = await runHelper(name, "store", serverUrl, input, options);
  if (run.code !== 0) throw helperFailed(name, "store", serverUrl, run, [secret]);
}

/** Asks the helper to forget `serverUrl`; false when it held nothing for it. */
export async function helperErase(
  name: string,
  serverUrl: string,
  options: HelperOptions = {},
): Promise<boolean> {
  const run = await runHelper(name, "erase", serverUrl, serverUrl, options);
  if (run.code === 0) return true;
  if (isNotFound(run)) return false;
  throw helperFailed(name, "erase", serverUrl, run, []);
}

function runHelper(
  name: string,
  action: Action,
  serverUrl: string,
  input: string,
  options: HelperOptions,
): Promise<HelperRun> {
  const program = `${HELPER_PREFIX}${name}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fields = { helper: name, action, serverUrl };
  return new Promise((resolve, reject) => {
    const { spawn } = requireBuiltin("node:child_process") as typeof import("node:child_process");
    const child = spawn(program, [action], {
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let outputBytes = 0;
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      outputBytes += chunk.length;
      if (outputBytes <= MAX_OUTPUT_BYTES) into.push(chunk);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      child.stdout.destroy();
      child.stderr.destroy();
      finish(() =>
        reject(
          new FerryError(
            "FERRY_CREDENTIAL_HELPER",
            `credential helper ${program} did not answer "${action}" for ${serverUrl} within ${timeoutMs / 1000} s`,
            { hint: helperHint(name), fields },
          ),
        ),
      );
    }, timeoutMs);
    child.stdout.on("data", collect(stdout));
    child.stderr.on("data", collect(stderr));
    // A helper that exits without reading its input must not crash us with EPIPE.
    child.stdin.on("error", () => undefined);
    child.on("error", (err) => {
      const code = (err as { code?: string }).code;
      finish(() =>
        reject(
          new FerryError(
            "FERRY_CREDENTIAL_HELPER",
            code === "ENOENT"
              ? `credential helper ${program} is not installed (not found on PATH)`
              : `cannot run credential helper ${program} (${code ?? err.message})`,
            { hint: helperHint(name), fields, cause: err },
          ),
        ),
      );
    });
    child.on("close", (code) => {
      finish(() =>
        resolve({
          code,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
        }),
      );
    });
    child.stdin.end(input);
  });
}

function isNotFound(run: HelperRun): boolean {
  return (
    run.stdout.toLowerCase().includes(NOT_FOUND) || run.stderr.toLowerCase().includes(NOT_FOUND)
  );
}

function helperFailed(
  name: string,
  action: Action,
  serverUrl: string,
  run: HelperRun,
  secrets: readonly string[],
): FerryError {
  const said = quotable(run, secrets);
  const status = run.code === null ? "killed by a signal" : `exit status ${run.code}`;
  return new FerryError(
    "FERRY_CREDENTIAL_HELPER",
    `credential helper ${HELPER_PREFIX}${name} failed to ${action} credentials for ${serverUrl} (${status})${said === "" ? "" : `: ${said}`}`,
    { hint: helperHint(name), fields: { helper: name, action, serverUrl, exitCode: run.code } },
  );
}

/** What the helper said on failure, safe to show: stderr, else stdout unless it looks like JSON (which may hold a secret). */
function quotable(run: HelperRun, secrets: readonly string[]): string {
  let text = run.stderr.trim();
  if (text === "") {
    const out = run.stdout.trim();
    text = out.startsWith("{") || out.startsWith("[") ? "" : out;
  }
  for (const secret of secrets) {
    if (secret !== "") text = text.split(secret).join("***");
  }
  text = text.replace(/\s+/g, " ");
  return text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}…` : text;
}

function helperHint(name: string): string {
  return `check that ${HELPER_PREFIX}${name} is installed and works on its own (e.g. its keychain is unlocked), or remove it from credHelpers/credsStore in your Docker config`;
}
