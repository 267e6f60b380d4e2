/** Lines for warm, check and bootstrap results: `PULLED ref (3.2s)`, `PRESENT ref`, `FAILED ref: why`. */
import type { ImageEntry, WarmFunction, WarmResult } from "../agent/index.ts";
import type { ErrorCode } from "../observe/index.ts";
import { exitCodeFor } from "./exit-codes.ts";
import { ExitCode, type Output } from "./output.ts";

export interface ResultPrinter {
  /** One result as it settles ("pulling" only in JSON). */
  result(r: WarmResult): void;
  /** The closing line (object in JSON); returns the exit code. */
  summary(results: readonly WarmResult[], seconds: number): number;
}

export function createResultPrinter(
  output: Output,
  options: { json: boolean; severalTargets: boolean },
): ResultPrinter {
  return {
    result(r) {
      if (options.json) {
        output.out(
          `${JSON.stringify({ event: r.state === "pulling" ? "pulling" : "result", ...r })}\n`,
        );
        return;
      }
      const line = resultLine(r);
      if (line !== undefined)
        output.out(`${options.severalTargets ? `${r.target}: ` : ""}${line}\n`);
    },
    summary(results, seconds) {
      const exitCode = exitCodeOfResults(results);
      const counts = countStates(results);
      if (options.json) {
        output.out(`${JSON.stringify({ event: "summary", ...counts, seconds, exitCode })}\n`);
      } else {
        output.out(`${summaryLine(counts)} in ${seconds}s\n`);
      }
      return exitCode;
    },
  };
}

export function resultLine(r: WarmResult): string | undefined {
  const optional = r.required ? "" : " (optional)";
  switch (r.state) {
    case "pulled":
      return `PULLED ${r.image} (${r.seconds ?? 0}s)${optional}`;
    case "present":
      return `PRESENT ${r.image}${optional}`;
    case "missing":
      return `MISSING ${r.image}${optional}`;
    case "failed":
      return `FAILED ${r.image}: ${r.error?.message ?? "unknown error"}${optional}`;
    case "pulling":
      return undefined;
  }
}

interface Counts {
  pulled: number;
  present: number;
  missing: number;
  failed: number;
  requiredFailed: number;
}

function countStates(results: readonly WarmResult[]): Counts {
  const counts: Counts = { pulled: 0, present: 0, missing: 0, failed: 0, requiredFailed: 0 };
  for (const r of results) {
    if (r.state === "pulled" || r.state === "present" || r.state === "missing") counts[r.state]++;
    if (r.state === "failed") counts.failed++;
    if (r.required && (r.state === "failed" || r.state === "missing")) counts.requiredFailed++;
  }
  return counts;
}

function summaryLine(c: Counts): string {
  const parts = [
    c.pulled > 0 ? `${c.pulled} pulled` : undefined,
    `${c.present} present`,
    c.missing > 0 ? `${c.missing} missing` : undefined,
    c.failed > 0 ? `${c.failed} failed` : undefined,
  ].filter((p) => p !== undefined);
  const required = c.requiredFailed > 0 ? ` (${c.requiredFailed} required not in place)` : "";
  return `${parts.join(", ")}${required}`;
}

/**
 * 0 when every required image is in place; else the class of the first
 * required failure in list order (a missing image, from check, is 1).
 */
export function exitCodeOfResults(results: readonly WarmResult[]): number {
  const first = results.find((r) => r.required && (r.state === "failed" || r.state === "missing"));
  if (first === undefined) return ExitCode.ok;
  if (first.state === "missing") return ExitCode.failure;
  // Codes come from FerryErrors, so they are ErrorCodes; unknown ones map to 1.
  return exitCodeFor((first.error?.code ?? "FERRY_INTERNAL") as ErrorCode);
}

/** Runs a warm (or check) function over the images, printing each result and the summary; returns the exit code. */
export async function runAndPrint(
  run: WarmFunction,
  images: readonly ImageEntry[],
  options: { output: Output; json: boolean; severalTargets: boolean; signal: AbortSignal },
): Promise<number> {
  const printer = createResultPrinter(options.output, {
    json: options.json,
    severalTargets: options.severalTargets,
  });
  const started = performance.now();
  const results = await run(images, { signal: options.signal, onResult: (r) => printer.result(r) });
  if (options.signal.aborted) return ExitCode.interrupted;
  return printer.summary(results, Math.round(performance.now() - started) / 1000);
}
