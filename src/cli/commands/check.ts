import { parseArgs } from "../args.ts";
import { createCheckFunction } from "../../agent/index.ts";
import type { Output } from "../output.ts";
import { openTargets, planFromFlags, TARGET_OPTIONS, TARGET_USAGE } from "../targets.ts";
import { runAndPrint } from "../warm-output.ts";

export const checkUsage = `Usage: ferry check -f LIST [REF...] [--target KIND ...] [options]

Say whether each listed image is in each target, without pulling anything:
PRESENT or MISSING per image and target. Exits 1 when a required image is
missing (or with the failure's class when a target cannot be asked).

Options:
${TARGET_USAGE}`;

export async function checkCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: TARGET_OPTIONS,
  });
  const plan = await planFromFlags(values, positionals, "check");
  const opened = await openTargets(plan.kinds, values, output);
  try {
    const check = createCheckFunction({ targets: opened.targets, concurrency: plan.concurrency });
    return await runAndPrint(check, plan.images, {
      output,
      json: values.json === true,
      severalTargets: opened.targets.length > 1,
      signal,
    });
  } finally {
    await opened.close();
  }
}
