import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { warmThroughMirror } from "../../mirror/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import { Limiter } from "../../pull/index.ts";
import { parseReference } from "../../reference/index.ts";
import { ExitCode, type Output, renderError, usageError } from "../output.ts";

export const warmUsage = `Usage: ferry warm REF... [-f LIST] --mirror URL [--concurrency N] [--platform P] [--json]

Fill a registry mirror ahead of need: pull each image through it (manifest, config,
layers) as a client would, so later pulls are local reads. LIST holds one reference
per line (# comments allowed).
`;

export async function warmCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      file: { type: "string", short: "f" },
      mirror: { type: "string" },
      concurrency: { type: "string", default: "4" },
      platform: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (values.mirror === undefined) throw usageError("warm needs --mirror URL (the mirror to fill)");
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw usageError("--concurrency must be a positive whole number");
  const texts = [...positionals];
  if (values.file !== undefined) {
    const lines = (await readFile(values.file, "utf8"))
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim());
    texts.push(...lines.filter(Boolean));
  }
  if (texts.length === 0) throw usageError("warm needs image references (arguments or -f LIST)");
  const refs = texts.map((t) => parseReference(t));
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);
  const limiter = new Limiter(concurrency);
  let failed = 0;
  let exit: number = ExitCode.ok;
  await Promise.all(
    refs.map((ref, i) =>
      limiter.run(async () => {
        try {
          const r = await warmThroughMirror(values.mirror as string, ref, {
            signal,
            ...(platform ? { platform } : {}),
          });
          if (values.json) output.out(`${JSON.stringify({ event: "warmed", ...r })}\n`);
          else
            output.out(
              `WARMED ${r.reference} ${r.digest} (${r.blobs} blobs, ${r.bytes} bytes, ${r.seconds}s)\n`,
            );
        } catch (err) {
          failed++;
          const code = renderError(
            err,
            values.json ? { out() {}, err() {}, isTTY: false, columns: 80 } : output,
            `FAILED ${texts[i]}`,
          );
          if (values.json)
            output.out(
              `${JSON.stringify({ event: "failed", reference: texts[i], message: (err as Error).message })}\n`,
            );
          if (exit === ExitCode.ok) exit = code;
        }
      }),
    ),
  );
  if (!values.json) output.out(`${refs.length - failed} warmed, ${failed} failed\n`);
  return exit;
}
