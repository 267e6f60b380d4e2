import { parseArgs } from "../args.ts";
import { openStore } from "../context.ts";
import { findLocalImage } from "../local.ts";
import { ExitCode, type Output, renderError, usageError } from "../output.ts";

export const rmUsage = `Usage: ferry rm REF... [--store DIR]

Remove image names from the store. Their blobs stay until \`ferry prune\` reclaims them.
`;

export async function rmCommand(args: string[], output: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { store: { type: "string" } },
  });
  if (positionals.length === 0) throw usageError("rm needs at least one image reference");
  const store = await openStore(values);
  let exit: number = ExitCode.ok;
  for (const text of positionals) {
    try {
      const record = await findLocalImage(store, text);
      await store.removeImage(record.reference);
      output.out(`Untagged: ${record.reference}\n`);
    } catch (err) {
      exit = renderError(err, output, text);
    }
  }
  return exit;
}
