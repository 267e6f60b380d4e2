import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Readable } from "node:stream";
import { parseArgs } from "../args.ts";
import { type LoadEvent, type LoadSummary, loadArchive } from "../../archive/index.ts";
import { FerryError } from "../../observe/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import { formatReference, parseReference } from "../../reference/index.ts";
import { openStore } from "../context.ts";
import { exitCodeFor } from "../exit-codes.ts";
import {
  asFerryError,
  ExitCode,
  errorJson,
  formatBytes,
  type Output,
  usageError,
} from "../output.ts";

export const loadUsage = `Usage: ferry load [-i FILE] [--platform OS/ARCH[/VARIANT]] [--store DIR] [-q] [--json]

Import images from a tar archive (stdin when -i is omitted) into the store:
  - an OCI image layout: ferry save, skopeo copy … oci-archive:FILE:NAME, docker save (Docker 25+)
  - a docker save archive: manifest.json with one tar per layer (<id>/layer.tar), as Docker
    before 25 writes it; the image gets a Docker schema 2 manifest, as containerd builds it
The archive may be gzip- or zstd-compressed.

Every blob is checked against its digest while it streams into the store, every size against
its descriptor, and each docker layer against the config's rootfs.diff_ids, before any name is
recorded. Names come from io.containerd.image.name or a full ref.name in index.json, else from
manifest.json's RepoTags, normalized as pull does (busybox:1 is Docker Hub's library/busybox:1).

Refused, with exit 6 (FERRY_ARCHIVE_INVALID) and nothing recorded: entries outside the archive
root (.., absolute paths), links (except docker save's own <id>/layer.tar links), devices, the
same path twice with different content, a truncated archive, content that does not match its
digest, sizes that differ from descriptors, references to files the archive lacks. Blobs verified
before the refusal stay in the store unreferenced, for prune to reclaim.

  -i, --input FILE              read the archive from FILE
  --platform OS/ARCH[/VARIANT]  image to record from a multi-platform index (default: this host's)
  --store DIR                   store directory (default: $FERRY_STORE or the default location)
  -q, --quiet                   print only the loaded references
  --json                        one JSON object per event, ending with a "done" summary
`;

export async function loadCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      input: { type: "string", short: "i" },
      platform: { type: "string" },
      store: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      json: { type: "boolean" },
    },
  });
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);
  const path =
    values.input === undefined || values.input === "-" ? undefined : resolve(values.input);
  if (path === undefined && process.stdin.isTTY) {
    throw usageError(
      "no archive to read: stdin is a terminal",
      "give a file with -i FILE, or pipe one in",
    );
  }
  if (path !== undefined) await requireFile(path);
  const input: Readable =
    path === undefined ? process.stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  const store = await openStore(values);
  const mode = values.json ? "json" : values.quiet ? "quiet" : "plain";
  try {
    const summary = await loadArchive({
      store,
      input,
      source: path ?? "stdin",
      normalizeName: (text) => formatReference(parseReference(text)),
      ...(platform === undefined ? {} : { platform }),
      onEvent: (event) => render(event, mode, output),
      signal,
    });
    if (mode === "json") output.out(`${JSON.stringify({ event: "done", ...summary })}\n`);
    else if (mode === "plain") output.out(describe(summary));
    return ExitCode.ok;
  } catch (err) {
    if (mode !== "json") throw err;
    output.out(errorJson(err));
    return exitCodeFor(asFerryError(err).code);
  } finally {
    input.destroy();
  }
}

async function requireFile(path: string): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (s === undefined || !s.isFile()) {
    throw new FerryError("FERRY_INVALID_ARGUMENT", `${path} is not a file`, {
      hint: "give the archive written by ferry save, docker save or skopeo with -i FILE",
      fields: { path },
    });
  }
}

function render(event: LoadEvent, mode: "json" | "quiet" | "plain", output: Output): void {
  if (mode === "json") {
    const { type, ...rest } = event;
    output.out(`${JSON.stringify({ event: type, ...rest })}\n`);
    return;
  }
  if (event.type === "image") {
    output.out(mode === "quiet" ? `${event.reference}\n` : `Loaded image: ${event.reference}\n`);
  } else if (event.type === "unnamed" && mode === "plain") {
    output.err(
      `ferry: the archive names no reference for image ${event.digest} (config ${event.configDigest}); its blobs are stored but nothing was recorded\n`,
    );
  } else if (event.type === "blob" && mode === "plain") {
    const id = event.digest.slice(event.digest.indexOf(":") + 1, event.digest.indexOf(":") + 13);
    output.out(`${id}: ${event.status === "written" ? "Loaded" : "Already exists"}\n`);
  }
}

function describe(s: LoadSummary): string {
  const images = `${s.images.length} image name${s.images.length === 1 ? "" : "s"}`;
  return `Loaded ${images} from a ${s.format === "oci" ? "OCI layout" : "docker save"} archive: ${s.blobsWritten} blobs written (${formatBytes(s.bytesWritten)}), ${s.blobsSkipped} already present\n`;
}
