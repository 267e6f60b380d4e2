import { parseArgs } from "../args.ts";
import { FerryError } from "../../observe/index.ts";
import { openStore } from "../context.ts";
import { findLocalImage } from "../local.ts";
import { ExitCode, type Output, renderError, usageError } from "../output.ts";

export const pinUsage = `Usage: ferry pin REF... [--store DIR]

Pin images: \`ferry prune\` (any option) and the agent's eviction policy never remove them.
\`ferry rm\` still does. \`ferry images\` shows which images are pinned.
`;

export const unpinUsage = `Usage: ferry unpin REF... [--store DIR]

Unpin images, so pruning and eviction may remove them again.
`;

export function pinCommand(args: string[], output: Output): Promise<number> {
  return setPinned(args, output, true);
}

export function unpinCommand(args: string[], output: Output): Promise<number> {
  return setPinned(args, output, false);
}

async function setPinned(args: string[], output: Output, pinned: boolean): Promise<number> {
  const verb = pinned ? "pin" : "unpin";
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { store: { type: "string" } },
  });
  if (positionals.length === 0) throw usageError(`${verb} needs at least one image reference`);
  const store = await openStore(values);
  let exit: number = ExitCode.ok;
  for (const text of positionals) {
    try {
      const record = await findLocalImage(store, text);
      if (!(await store.setPinned(record.reference, pinned))) {
        // Removed between the lookup and the write.
        throw new FerryError("FERRY_IMAGE_NOT_FOUND", `no image ${record.reference} in the store`, {
          fields: { reference: record.reference },
        });
      }
      output.out(`${pinned ? "Pinned" : "Unpinned"}: ${record.reference}\n`);
    } catch (err) {
      exit = renderError(err, output, text);
    }
  }
  return exit;
}
