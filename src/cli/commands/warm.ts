import { parseArgs } from "../args.ts";
import { createWarmFunction, DEFAULT_WARM_RETRIES, type ImageEntry } from "../../agent/index.ts";
import { warmThroughMirror } from "../../mirror/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import { Limiter } from "../../pull/index.ts";
import { formatReference } from "../../reference/index.ts";
import { ExitCode, type Output, renderError, usageError } from "../output.ts";
import { openTargets, planFromFlags, TARGET_OPTIONS, TARGET_USAGE } from "../targets.ts";
import { runAndPrint } from "../warm-output.ts";

export const warmUsage = `Usage: ferry warm -f LIST [REF...] [--target KIND ...] [options]
       ferry warm REF... [-f LIST] --mirror URL [--concurrency N] [--platform P] [--json]

Put images where they will be needed: each listed image into each target (ferry's
store, Docker, containerd), pulled only when missing; required images are pinned
against pruning and the runtime's garbage collection. Prints PULLED, PRESENT or
FAILED per image and target; exits non-zero when a required image failed.

With --mirror URL, fill a registry mirror instead: pull each image through it
(manifest, config, layers) as a client would, so later pulls are local reads.

Options:
${TARGET_USAGE}  --retries N               attempts after the first on network failures (default ${DEFAULT_WARM_RETRIES})
  --mirror URL              fill this registry mirror instead of targets
`;

export async function warmCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...TARGET_OPTIONS, mirror: { type: "string" }, retries: { type: "string" } },
  });
  const plan = await planFromFlags(values, positionals, "warm");
  if (values.mirror !== undefined) {
    return warmMirror(
      values.mirror,
      plan.images,
      plan.concurrency,
      values.json === true,
      output,
      signal,
    );
  }
  const retries = Number(values.retries ?? DEFAULT_WARM_RETRIES);
  if (!Number.isInteger(retries) || retries < 0 || retries > 20) {
    throw usageError(`--retries must be a whole number from 0 to 20, got "${values.retries}"`);
  }
  const opened = await openTargets(plan.kinds, values, output);
  try {
    const warm = createWarmFunction({
      targets: opened.targets,
      concurrency: plan.concurrency,
      retries,
      credentials: opened.credentials,
      ...(opened.store ? { store: opened.store } : {}),
    });
    return await runAndPrint(warm, plan.images, {
      output,
      json: values.json === true,
      severalTargets: opened.targets.length > 1,
      signal,
    });
  } finally {
    await opened.close();
  }
}

/** Mirror mode: every image through the mirror's registry API, as a client pulls it. */
async function warmMirror(
  mirror: string,
  images: readonly ImageEntry[],
  concurrency: number,
  json: boolean,
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const limiter = new Limiter(concurrency);
  let failed = 0;
  let exit: number = ExitCode.ok;
  await Promise.all(
    images.map((entry) =>
      limiter.run(async () => {
        try {
          const platform = entry.platform === undefined ? undefined : parsePlatform(entry.platform);
          const r = await warmThroughMirror(mirror, entry.ref, {
            signal,
            ...(platform ? { platform } : {}),
          });
          if (json) output.out(`${JSON.stringify({ event: "warmed", ...r })}\n`);
          else
            output.out(
              `WARMED ${r.reference} ${r.digest} (${r.blobs} blobs, ${r.bytes} bytes, ${r.seconds}s)\n`,
            );
        } catch (err) {
          failed++;
          const quiet = { out() {}, err() {}, isTTY: false, columns: 80 };
          const code = renderError(
            err,
            json ? quiet : output,
            `FAILED ${formatReference(entry.ref)}`,
          );
          if (json)
            output.out(
              `${JSON.stringify({ event: "failed", reference: formatReference(entry.ref), message: (err as Error).message })}\n`,
            );
          if (exit === ExitCode.ok) exit = code;
        }
      }),
    ),
  );
  if (!json) output.out(`${images.length - failed} warmed, ${failed} failed\n`);
  return exit;
}
