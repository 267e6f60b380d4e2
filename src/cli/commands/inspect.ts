import { parseArgs } from "../args.ts";
import { openStore } from "../context.ts";
import { findLocalImage, imageSizes, readImageManifest } from "../local.ts";
import { ExitCode, type Output, usageError } from "../output.ts";

export const inspectUsage = `Usage: ferry inspect REF [--store DIR]

Print a stored image's manifest, config and layers as JSON. \`size\` is the SIZE of
\`ferry images\` and \`ferry df -v\` (its blobs in the store, the index it came from included).
`;

export async function inspectCommand(args: string[], output: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { store: { type: "string" } },
  });
  if (positionals.length !== 1) throw usageError("inspect takes exactly one image reference");
  const store = await openStore(values);
  const record = await findLocalImage(store, positionals[0] as string);
  const manifest = await readImageManifest(store, record);
  const config = JSON.parse(
    (await store.readBlob(manifest.config.digest)).toString("utf8"),
  ) as unknown;
  const result = {
    reference: record.reference,
    digest: record.sourceDigest,
    manifestDigest: record.descriptor.digest,
    mediaType: record.descriptor.mediaType,
    platform: record.descriptor.platform,
    size: (await imageSizes(store)).get(record.reference) ?? 0,
    pulledAt: record.pulledAt,
    layers: manifest.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
    })),
    manifest,
    config,
  };
  output.out(`${JSON.stringify(result, null, 2)}\n`);
  return ExitCode.ok;
}
