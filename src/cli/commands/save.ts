import { resolve } from "node:path";
import { parseArgs } from "../args.ts";
import {
  type SaveImage,
  type SaveSummary,
  saveArchive,
  saveArchiveFile,
} from "../../archive/index.ts";
import type { ImageRecord } from "../../store/index.ts";
import { familiarName, parseReference } from "../../reference/index.ts";
import { openStore } from "../context.ts";
import { findLocalImage } from "../local.ts";
import { ExitCode, formatBytes, type Output, usageError } from "../output.ts";
import { stdout } from "../stdio.ts";

export const saveUsage = `Usage: ferry save REF... [-o FILE] [--store DIR] [--json]

Write stored images to one tar archive that is both an OCI image layout (skopeo
oci-archive:FILE:REF, \`ctr images import\`) and a \`docker load\` archive (manifest.json,
repositories), as Docker 25+ writes them. Blobs shared by several images are written once.

  -o, --output FILE   write the archive to FILE: into a temporary file first, renamed when
                      complete, so FILE is never half-written. Without -o the archive goes
                      to stdout, which must not be a terminal.
  --store DIR         store directory (default: $FERRY_STORE or the default location)
  --json              print the summary as one JSON object

Names: index.json names each image by its full reference (ref.name and containerd's
io.containerd.image.name); manifest.json's RepoTags use Docker's short names (alpine:3.20);
an image pulled by digest alone has no RepoTags.
`;

export async function saveCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      output: { type: "string", short: "o" },
      store: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (positionals.length === 0) {
    throw usageError(
      "save needs at least one image reference",
      "e.g. `ferry save alpine:3.20 -o alpine.tar`",
    );
  }
  const path =
    values.output === undefined || values.output === "-" ? undefined : resolve(values.output);
  if (path === undefined && stdout.stream.isTTY) {
    throw usageError(
      "refusing to write a tar archive to a terminal",
      "give a file with -o FILE, or redirect stdout (`ferry save REF > FILE.tar`)",
    );
  }
  const store = await openStore(values);
  const images: SaveImage[] = [];
  for (const text of positionals) {
    const record = await findLocalImage(store, text);
    if (!images.some((i) => i.record.reference === record.reference)) {
      images.push({ record, repoTags: repoTagsOf(record) });
    }
  }
  const options = { store, images, signal };
  const summary =
    path === undefined
      ? await saveArchive(stdout.stream, options)
      : await saveArchiveFile(path, options);
  // With the archive on stdout, the summary goes to stderr.
  const say = (text: string) => (path === undefined ? output.err(text) : output.out(text));
  say(
    values.json
      ? `${JSON.stringify({ event: "done", path: path ?? "-", ...summary })}\n`
      : describe(summary, path),
  );
  return ExitCode.ok;
}

/** Docker's RepoTags: the familiar name with its tag; an image known by digest only has none. */
function repoTagsOf(record: ImageRecord): string[] {
  const ref = parseReference(record.reference);
  if (ref.tag === undefined) return [];
  return [familiarName({ ...ref, digest: undefined })];
}

function describe(s: SaveSummary, path: string | undefined): string {
  const images = `${s.images} image${s.images === 1 ? "" : "s"}`;
  return `Saved ${images} (${s.blobs} blobs, ${formatBytes(s.bytes)}) to ${path ?? "stdout"}\n`;
}
