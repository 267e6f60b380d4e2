import { parseArgs } from "../args.ts";
import { familiarName, parseReference } from "../../reference/index.ts";
import { openStore } from "../context.ts";
import { imageSizes } from "../local.ts";
import { ExitCode, formatBytes, type Output } from "../output.ts";
import { timeAgo } from "../relative-time.ts";
import { compileRowTemplate } from "../row-template.ts";
import { alignColumns } from "../table.ts";

export const imagesUsage = `Usage: ferry images [-q] [--format FORMAT | --json] [--store DIR]

List the images in the store: repository, tag, digest, size and when they were pulled
("5 minutes ago"); a PINNED column appears when some image is pinned (\`ferry pin\`).

SIZE is the bytes the image's blobs take in the store (manifest, config, compressed layers,
and the multi-platform index it was pulled from), each blob once; blobs shared with other
images count for each of them. It is the SIZE of \`ferry df -v\`.

Options:
  -q, --quiet       print only references, one a line (\`ferry rm $(ferry images -q)\`)
  --format FORMAT   one line per image from a template: {{.Repository}}:{{.Tag}}; fields
                    Repository Tag Reference Digest ID Size PulledAt PulledSince Pinned;
                    \`--format json\` prints one JSON object per line; \`--format "table
                    {{.Repository}}\\t{{.Size}}"\` adds a header row and aligns the columns
  --json            one JSON array, with \`pinned\` and \`lastUsedAt\` (the last pull or use;
                    pruning goes by it)
  --store DIR       store directory
`;

const TEMPLATE_FIELDS = [
  "Repository",
  "Tag",
  "Reference",
  "Digest",
  "ID",
  "Size",
  "PulledAt",
  "PulledSince",
  "Pinned",
] as const;

/** The column titles of a `--format "table …"` header row. */
const HEADERS: Record<(typeof TEMPLATE_FIELDS)[number], string> = {
  Repository: "REPOSITORY",
  Tag: "TAG",
  Reference: "REFERENCE",
  Digest: "DIGEST",
  ID: "IMAGE ID",
  Size: "SIZE",
  PulledAt: "PULLED AT",
  PulledSince: "PULLED",
  Pinned: "PINNED",
};
const DEFAULT_TABLE = "{{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.Size}}\\t{{.PulledSince}}";

export async function imagesCommand(args: string[], output: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quiet: { type: "boolean", short: "q" },
      format: { type: "string" },
      json: { type: "boolean" },
      store: { type: "string" },
    },
  });
  const tabular = values.format?.startsWith("table") === true;
  const text = tabular ? (values.format ?? "").slice("table".length).trim() : values.format;
  const template =
    text === undefined || text === "json"
      ? undefined
      : compileRowTemplate(text === "" ? DEFAULT_TABLE : text, TEMPLATE_FIELDS);
  const store = await openStore(values);
  const sizes = await imageSizes(store);
  const rows = [];
  for (const record of await store.images()) {
    rows.push({
      reference: record.reference,
      digest: record.sourceDigest,
      manifestDigest: record.descriptor.digest,
      platform: record.descriptor.platform,
      size: sizes.get(record.reference) ?? 0,
      pulledAt: record.pulledAt,
      lastUsedAt: (await store.lastUsedAt(record))?.toISOString(),
      pinned: record.pinned,
    });
  }
  rows.sort((a, b) => a.reference.localeCompare(b.reference));
  if (values.json) {
    output.out(`${JSON.stringify(rows, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (values.quiet) {
    for (const r of rows) output.out(`${r.reference}\n`);
    return ExitCode.ok;
  }
  const now = new Date();
  const cells = rows.map((r) => {
    const ref = parseReference(r.reference);
    return {
      Repository: familiarName({ ...ref, tag: undefined, digest: undefined }),
      Tag: ref.tag ?? "<none>",
      Reference: r.reference,
      Digest: r.digest,
      ID: r.digest.slice(r.digest.indexOf(":") + 1, r.digest.indexOf(":") + 13),
      Size: formatBytes(r.size),
      PulledAt: r.pulledAt ?? "",
      PulledSince: r.pulledAt === undefined ? "" : timeAgo(new Date(r.pulledAt), now),
      Pinned: r.pinned ? "true" : "false",
    };
  });
  if (values.format === "json") {
    for (const c of cells) output.out(`${JSON.stringify(c)}\n`);
    return ExitCode.ok;
  }
  if (template !== undefined && tabular) {
    // Docker's `table` templates: a header row of the fields' titles, tab-separated cells aligned.
    const rows = [HEADERS, ...cells].map((c) => template(c).split("\t"));
    output.out(alignColumns(rows));
    return ExitCode.ok;
  }
  if (template !== undefined) {
    for (const c of cells) output.out(`${template(c)}\n`);
    return ExitCode.ok;
  }
  // The column shows only when it says something, so the usual table keeps its shape.
  const anyPinned = rows.some((r) => r.pinned);
  const table = [
    ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PULLED", ...(anyPinned ? ["PINNED"] : [])],
  ];
  for (const c of cells) {
    table.push([
      c.Repository,
      c.Tag,
      c.Digest.slice(0, 19),
      c.Size,
      c.PulledSince,
      ...(anyPinned ? [c.Pinned === "true" ? "pinned" : ""] : []),
    ]);
  }
  output.out(alignColumns(table));
  return ExitCode.ok;
}
