import { parseArgs } from "../args.ts";
import {
  type BootstrapEvent,
  type BootstrapOutcome,
  createWarmFunction,
  notifySystemdReady,
  type ReadyHook,
  readyFileHook,
  runBootstrap,
} from "../../agent/index.ts";
import { FerryError } from "../../observe/index.ts";
import { parseDuration } from "../../store/index.ts";
import { ExitCode, type Output, renderError } from "../output.ts";
import { openTargets, planFromFlags, TARGET_OPTIONS, TARGET_USAGE } from "../targets.ts";
import { createResultPrinter } from "../warm-output.ts";

const DEFAULT_TIMEOUT = "10m";

export const bootstrapUsage = `Usage: ferry bootstrap -f LIST [--target KIND ...] [--timeout 10m] [--ready-file PATH] [options]

Gate a starting machine on its images: wait (with backoff) until every target
answers, warm the list (required images again and again until they are in
place; optional ones are tried, and their failures do not block), then signal
ready: write --ready-file atomically, and tell systemd (Type=notify,
NotifyAccess=all) with systemd-notify when NOTIFY_SOCKET is set. Exits 0 when
ready; when --timeout passes first, exits 5 and says what is missing.

Options:
${TARGET_USAGE}  --timeout DURATION        give up after this long (default ${DEFAULT_TIMEOUT}), e.g. 90s, 10m
  --ready-file PATH         written once ready (JSON: the images and their state)
`;

export async function bootstrapCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...TARGET_OPTIONS,
      timeout: { type: "string", default: DEFAULT_TIMEOUT },
      "ready-file": { type: "string" },
    },
  });
  const timeoutMs = parseDuration(values.timeout, "--timeout");
  const plan = await planFromFlags(values, positionals, "bootstrap");
  const json = values.json === true;
  const readyFile = values["ready-file"];
  const opened = await openTargets(plan.kinds, values, output);
  try {
    const printer = createResultPrinter(output, { json, severalTargets: plan.kinds.length > 1 });
    const outcome = await runBootstrap({
      targets: opened.targets,
      images: plan.images,
      warm: createWarmFunction({
        targets: opened.targets,
        concurrency: plan.concurrency,
        credentials: opened.credentials,
        ...(opened.store ? { store: opened.store } : {}),
      }),
      timeoutMs,
      signal,
      onReady: [
        ...(readyFile === undefined ? [] : [readyFileHook(readyFile)]),
        systemdHook(output),
      ],
      onEvent: (event) => {
        if (event.type === "result") printer.result(event.result);
        else if (json) output.out(`${JSON.stringify(eventJson(event))}\n`);
        else output.out(eventLine(event));
      },
    });
    if (outcome.ready) return ExitCode.ok;
    if (outcome.reason === "interrupted") return ExitCode.interrupted;
    if (json) output.out(`${JSON.stringify({ event: "not-ready", ...outcome })}\n`);
    return renderError(notReady(outcome, values.timeout), output);
  } finally {
    await opened.close();
  }
}

/** systemd's READY=1 when NOTIFY_SOCKET is set; a warning (not a failure) when it cannot be sent. */
function systemdHook(output: Output): ReadyHook {
  return async () => {
    const notified = await notifySystemdReady();
    if (!notified.sent && process.env.NOTIFY_SOCKET) {
      output.err(`ferry bootstrap: cannot tell systemd we are ready: ${notified.reason}\n`);
    }
  };
}

function eventJson(event: BootstrapEvent): Record<string, unknown> {
  const { type, ...rest } = event;
  return { event: type, ...rest };
}

function eventLine(event: BootstrapEvent): string {
  switch (event.type) {
    case "target-waiting":
      return `WAITING for ${event.name}: ${event.reason}\n`;
    case "retry":
      return `RETRYING in ${(event.delayMs / 1000).toFixed(1)}s: ${event.images.join(", ")}\n`;
    case "ready":
      return `READY in ${event.seconds}s\n`;
    case "target-ready":
    case "result":
      return "";
  }
}

function notReady(outcome: BootstrapOutcome, timeout: string): FerryError {
  const what = [
    ...outcome.unavailable.map((t) => `${t.name} did not answer (${t.reason})`),
    ...outcome.missing.map(
      (r) => `${r.image} is not in ${r.target} (${r.error?.message ?? "not pulled"})`,
    ),
  ];
  return new FerryError("FERRY_TIMEOUT", `not ready after ${timeout}: ${what.join("; ")}`, {
    hint:
      outcome.unavailable.length > 0
        ? "check that the runtime is running and its endpoint (--docker-host, --cri-endpoint)"
        : "check that the registry is reachable and the images exist, or raise --timeout",
    fields: { unavailable: outcome.unavailable, missing: outcome.missing },
  });
}
