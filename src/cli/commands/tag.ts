import { parseArgs } from "../args.ts";
import { familiarName, formatReference, parseReference } from "../../reference/index.ts";
import { openStore } from "../context.ts";
import { findLocalImage } from "../local.ts";
import { ExitCode, type Output, usageError } from "../output.ts";

export const tagUsage = `Usage: ferry tag SOURCE TARGET [--store DIR]

Give a stored image another name, as \`docker tag\` does: SOURCE is a stored reference (or a
digest prefix from \`ferry images\`), TARGET the new name, e.g. so that \`ferry push TARGET\`
uploads it to another registry or repository. No bytes are copied; TARGET replaces whatever
the name held before (keeping its pin).
`;

export async function tagCommand(args: string[], output: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { store: { type: "string" } },
  });
  if (positionals.length !== 2)
    throw usageError(
      "tag takes a stored image and a new name",
      "e.g. `ferry tag alpine:3.20 localhost:5000/alpine:3.20`",
    );
  const [source, targetText] = positionals as [string, string];
  const target = parseReference(targetText);
  if (target.digest !== undefined)
    throw usageError(
      `the new name ${targetText} has a digest; a name is given a tag, the digest comes with the image`,
      `e.g. \`ferry tag ${source} ${familiarName({ ...target, digest: undefined, tag: "v1" })}\``,
    );
  const store = await openStore(values);
  const record = await findLocalImage(store, source);
  const name = formatReference(target);
  const pulledAt = record.pulledAt === undefined ? undefined : new Date(record.pulledAt);
  if (name !== record.reference)
    await store.recordImage(name, record.descriptor, record.sourceDigest, pulledAt);
  output.out(`Tagged: ${name}\n`);
  return ExitCode.ok;
}
