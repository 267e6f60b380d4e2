import { readFile } from "node:fs/promises";
import { parseArgs } from "../args.ts";
import {
  type ConvertEvent,
  type ConvertSummary,
  DEFAULT_CHUNK_SIZE,
  EstargzConverter,
  type ImagePlace,
} from "../../lazy/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import { parsePlace, STORE_PREFIX } from "../../pull/index.ts";
import { formatReference } from "../../reference/index.ts";
import { createRegistryClient, openStore } from "../context.ts";
import {
  ExitCode,
  errorJson,
  formatBytes,
  type Output,
  renderError,
  usageError,
} from "../output.ts";

export const convertUsage = `Usage: ferry convert --estargz SRC DST [options]

Rewrite an image as eStargz, so that it can be read lazily (\`ferry lazy\`,
\`ferry mount\`, containerd's stargz snapshotter) and still pulled as an
ordinary image by any runtime. Each layer is verified as it is read, split into
per-file (and per-chunk) gzip members with a table of contents, and given the
toc.digest and uncompressed-size annotations; the config's diff_ids follow.
SRC and DST are registry references, or store:REF for the local store (as for
\`ferry copy\`). From a multi-platform image one platform is converted; the
result is a single-platform OCI image.

Options:
  --estargz                     convert to eStargz (the one format ferry writes)
  --prioritize FILE             paths read at start-up (one a line, e.g. from \`ferry mount --record\`):
                                put first in their layers, before the prefetch landmark;
                                paths no layer has are reported and ignored
  --chunk-size N                largest piece of a file in one gzip member (default ${DEFAULT_CHUNK_SIZE})
  --platform OS/ARCH[/VARIANT]  the platform taken from a multi-platform image (default: this host's)
  --store DIR                   store directory, for work files and store: places (default: $FERRY_STORE or the default location)
  --config FILE                 ferry config file (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml)
  --json                        newline-delimited JSON events, ending with a "done" summary
`;

export async function convertCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      estargz: { type: "boolean" },
      prioritize: { type: "string" },
      "chunk-size": { type: "string" },
      platform: { type: "string" },
      store: { type: "string" },
      config: { type: "string" },
      json: { type: "boolean" },
    },
  });
  if (values.estargz !== true)
    throw usageError(
      "convert needs a target format",
      "eStargz is the one ferry writes: `ferry convert --estargz SRC DST`",
    );
  if (positionals.length !== 2)
    throw usageError(
      "convert needs a source and a destination",
      "e.g. `ferry convert --estargz HOST/app:1 HOST/app:1-esgz`",
    );
  const chunkText = values["chunk-size"];
  const chunkSize = chunkText === undefined ? DEFAULT_CHUNK_SIZE : Number(chunkText);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 4096 || chunkSize > 64 * 1024 * 1024)
    throw usageError(
      `--chunk-size must be a whole number of bytes from 4096 to 67108864, got "${chunkText}"`,
    );
  let prioritize: string[] = [];
  if (values.prioritize !== undefined) {
    const text = await readFile(values.prioritize, "utf8").catch((cause: unknown) => {
      throw usageError(`cannot read --prioritize file ${values.prioritize}: ${String(cause)}`);
    });
    prioritize = text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
  }
  const [srcText, dstText] = positionals as [string, string];
  const from = placeOf(srcText);
  const to = placeOf(dstText);
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);
  const store = await openStore(values);
  const registry = createRegistryClient({ config: values.config, output });
  const render = values.json ? jsonEvent(output) : plainEvent(output);
  try {
    const summary = await new EstargzConverter({ registry, store }).convert(from, to, {
      prioritize,
      chunkSize,
      platform,
      onEvent: render,
      signal,
    });
    if (values.json) output.out(`${JSON.stringify({ event: "done", ...summary })}\n`);
    else printSummary(output, summary, to.kind === "store" ? `${STORE_PREFIX}${to.name}` : to.name);
    return ExitCode.ok;
  } catch (err) {
    if (!values.json) return renderError(err, output);
    output.out(errorJson(err, { source: srcText, destination: dstText }));
    return renderError(err, { out() {}, err() {}, isTTY: false, columns: 80 });
  } finally {
    await registry.close();
  }
}

function placeOf(text: string): ImagePlace {
  const place = parsePlace(text);
  const name = formatReference(place.ref);
  if (place.kind === "store") return { kind: "store", name };
  return {
    kind: "registry",
    repository: { domain: place.ref.domain, path: place.ref.path },
    reference: place.ref.digest ?? place.ref.tag ?? "latest",
    name,
  };
}

const shortId = (digest: string) => digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);

function plainEvent(output: Output): (e: ConvertEvent) => void {
  return (e) => {
    const out = (line: string) => output.out(`${line}\n`);
    if (e.type === "resolved")
      out(
        `Converting ${e.source}${e.platform ? ` (${e.platform})` : ""}: ${e.layers} layer${e.layers === 1 ? "" : "s"} → ${e.destination}`,
      );
    else if (e.type === "layer" && e.status === "converted")
      out(
        `${shortId(e.digest)}: eStargz ${shortId(e.converted)} (${formatBytes(e.size)}, ${e.entries} TOC entries${e.prioritized > 0 ? `, ${e.prioritized} prioritized` : ""})`,
      );
    else if (e.type === "manifest") out(`digest: ${e.digest} size: ${e.size}`);
  };
}

function jsonEvent(output: Output): (e: ConvertEvent) => void {
  return (e) => {
    const { type, ...rest } = e;
    output.out(`${JSON.stringify({ event: type, ...rest })}\n`);
  };
}

function printSummary(output: Output, s: ConvertSummary, destination: string): void {
  if (s.missing.length > 0)
    output.err(
      `ferry: ${s.missing.length} prioritized path${s.missing.length === 1 ? " is" : "s are"} in no layer (ignored): ${s.missing
        .slice(0, 10)
        .map((p) => `/${p}`)
        .join(", ")}${s.missing.length > 10 ? ", …" : ""}\n`,
    );
  const where = destination.startsWith(STORE_PREFIX) ? "stored" : "pushed";
  output.out(`${destination}: ${where} eStargz image ${s.digest} in ${s.seconds}s\n`);
}
