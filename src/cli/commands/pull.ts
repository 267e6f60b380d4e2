import { parseArgs } from "node:util";
import { parsePlatform } from "../../oci/index.ts";
import { DEFAULT_CONCURRENCY, explainPullError, Puller } from "../../pull/index.ts";
import { parseReference, type Reference } from "../../reference/index.ts";
import { createRegistryClient, openStore } from "../context.ts";
import { ExitCode, errorJson, type Output, renderError, usageError } from "../output.ts";
import { createRenderer, type RenderMode } from "../render-pull.ts";

export const pullUsage = `Usage: ferry pull REF... [options]

Download images into the store: only the blobs it lacks, each verified.

Options:
  --platform OS/ARCH[/VARIANT]  platform to pick from a multi-platform image (default: this host's)
  --concurrency N               blobs downloading at once (default ${DEFAULT_CONCURRENCY})
  --hash-workers MODE           hash on worker threads: auto (when the CPU lacks SHA instructions), always, never
  --store DIR                   store directory (default: $FERRY_STORE or the default location)
  --config FILE                 ferry config file (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml)
  -q, --quiet                   print only the pulled references
  --json                        newline-delimited JSON events, ending with a "done" summary per image
`;

export async function pullCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      platform: { type: "string" },
      concurrency: { type: "string" },
      "hash-workers": { type: "string", default: "auto" },
      store: { type: "string" },
      config: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      json: { type: "boolean" },
    },
  });
  if (positionals.length === 0)
    throw usageError("pull needs at least one image reference", "e.g. `ferry pull alpine:3.20`");
  const concurrency =
    values.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw usageError(
      `--concurrency must be a whole number from 1 to 64, got "${values.concurrency}"`,
    );
  }
  const hashWorkers = values["hash-workers"];
  if (hashWorkers !== "auto" && hashWorkers !== "always" && hashWorkers !== "never") {
    throw usageError(`--hash-workers must be auto, always or never, got "${hashWorkers}"`);
  }
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);
  // Validate every reference before touching the network or the store.
  let refs: Reference[];
  try {
    refs = positionals.map((p) => parseReference(p));
  } catch (err) {
    if (!values.json) throw err;
    output.out(errorJson(err));
    return exitFromJson(err);
  }
  const mode: RenderMode = values.json
    ? "json"
    : values.quiet
      ? "quiet"
      : output.isTTY
        ? "tty"
        : "plain";
  const renderer = createRenderer(mode, output);
  const store = await openStore(values);
  const registry = createRegistryClient({ config: values.config, output });
  const puller = new Puller({
    registry,
    store,
    concurrency,
    hashWorkers,
    ...(platform ? { platform } : {}),
  });
  let exit: number = ExitCode.ok;
  try {
    await Promise.all(
      refs.map(async (ref, i) => {
        try {
          const summary = await puller.pull(ref, { onEvent: (e) => renderer.event(e), signal });
          renderer.done(summary);
        } catch (raw) {
          const err = await explainPullError(raw, {
            input: positionals[i] ?? "",
            ref,
            registry,
            signal,
          });
          const code =
            mode === "json" ? exitFromJson(err) : renderError(err, output, positionals[i]);
          if (mode === "json") renderer.failed(positionals[i] ?? "", err);
          if (exit === ExitCode.ok) exit = code;
        }
      }),
    );
  } finally {
    renderer.close();
    await puller.close();
    await registry.close();
  }
  return exit;
}

function exitFromJson(err: unknown): number {
  const sink: Output = { out() {}, err() {}, isTTY: false, columns: 80 };
  return renderError(err, sink);
}
