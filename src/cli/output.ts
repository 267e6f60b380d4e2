import { FerryError } from "../observe/index.ts";
import { isNoSpace } from "../fsx/index.ts";
import { diskError } from "../store/index.ts";
import { exitCodeFor, ExitCode } from "./exit-codes.ts";
import { stderr, stdout } from "./stdio.ts";

/** Where a command writes; injectable so tests can capture output. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
  readonly isTTY: boolean;
  readonly columns: number;
  /** The terminal's height, when known: live progress stays within it. */
  readonly rows?: number | undefined;
}

/** The process's own streams: a reader that goes away loses the text, and the work goes on. */
export const processOutput: Output = {
  out: (t) => stdout.write(t),
  err: (t) => stderr.write(t),
  get isTTY() {
    return stderr.stream.isTTY === true && stdout.stream.isTTY === true;
  },
  get columns() {
    return stdout.stream.columns ?? 80;
  },
  get rows() {
    return stdout.stream.rows;
  },
};

export function asFerryError(err: unknown): FerryError {
  if (err instanceof FerryError) return err;
  // A full disk is never a bug, whichever write met it first.
  if (isNoSpace(err))
    return diskError(err, String((err as { path?: unknown }).path ?? "the store"));
  const message = err instanceof Error ? err.message : String(err);
  return new FerryError("FERRY_INTERNAL", `unexpected error: ${message}`, {
    hint: "this is a bug in ferry; please report it with the command you ran",
    cause: err,
  });
}

/** One line for the error, one for what to do. Credentials never reach messages (they are never put in them). */
export function renderError(err: unknown, output: Output, context?: string): number {
  const e = asFerryError(err);
  output.err(`ferry: ${context ? `${context}: ` : ""}${e.message}\n`);
  if (e.hint) output.err(`  hint: ${e.hint}\n`);
  return exitCodeFor(e.code);
}

export function errorJson(err: unknown, extra: Record<string, unknown> = {}): string {
  const e = asFerryError(err);
  return `${JSON.stringify({ event: "error", ...extra, code: e.code, message: e.message, hint: e.hint, exitCode: exitCodeFor(e.code) })}\n`;
}

export function usageError(message: string, hint?: string): FerryError {
  return new FerryError("FERRY_INVALID_ARGUMENT", message, {
    hint: hint ?? "run `ferry --help` for usage",
  });
}

export { ExitCode };

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[i]}`;
}
