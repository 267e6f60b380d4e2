// `ferry mirror` as a process, and a plain HTTP client for it: shared by the mirror tests.
import { request } from "node:http";
import { type FerryProcess, type FerryResult, startFerry, untilLogged } from "./cli.ts";

// ---- a ferry mirror process ----

export interface MirrorProcess {
  url: string;
  host: string;
  store: string;
  proc: FerryProcess;
  /** everything the process wrote to stderr so far (its JSON log) */
  log(): string;
  /** SIGTERM (once: a second one would kill it at once), then its result */
  stop(): Promise<FerryResult>;
}

/** Every mirror started, for the tests' after() to stop. */
export const mirrors: MirrorProcess[] = [];

/** `ferry mirror --listen 127.0.0.1:0 ARGS`; resolves with the URL from its "mirror listening" log line. */
export async function startMirror(store: string, args: readonly string[]): Promise<MirrorProcess> {
  const proc = startFerry(["mirror", "--listen", "127.0.0.1:0", "--store", store, ...args]);
  let stderr = "";
  proc.child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  let stopped: Promise<FerryResult> | undefined;
  const stop = () => {
    if (stopped === undefined) {
      if (proc.child.exitCode === null && proc.child.signalCode === null)
        proc.child.kill("SIGTERM");
      stopped = proc.result;
    }
    return stopped;
  };
  const url = await untilLogged(
    "the mirror listening",
    proc,
    () => stderr,
    /"msg":"mirror listening"[^\n]*"url":"([^"]+)"/,
    15_000,
  ).catch((err: unknown) => {
    proc.child.kill("SIGKILL");
    throw err;
  });
  const m: MirrorProcess = { url, host: new URL(url).host, store, proc, log: () => stderr, stop };
  mirrors.push(m);
  return m;
}

// ---- plain HTTP clients ----

export interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** the body ended normally (not cut off) */
  complete: boolean;
  error: string | undefined;
}

/** One GET (or other method) on its own connection; a body cut short is reported, not thrown. */
export function get(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? "GET", headers: options.headers ?? {}, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        const finish = (complete: boolean, error?: string) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            complete,
            error,
          });
        res.on("end", () => finish(true));
        res.on("error", (err) => finish(false, err.message));
        res.on("aborted", () => finish(false, "aborted"));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

export function errorCodes(body: Buffer): string[] {
  const parsed = JSON.parse(body.toString("utf8")) as { errors: Array<{ code: string }> };
  return parsed.errors.map((e) => e.code);
}

export interface LoggedRequest {
  method: string;
  path: string;
  ns: string | null;
  status: number;
}

/** The mirror's JSON request log lines. */
export function requestsOf(log: string): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  for (const line of log.split("\n")) {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (entry.msg !== "request") continue;
    const url = new URL(String(entry.url), "http://mirror.invalid");
    out.push({
      method: String(entry.method),
      path: url.pathname,
      ns: url.searchParams.get("ns"),
      status: Number(entry.status),
    });
  }
  return out;
}
