import { parseArgs } from "../args.ts";
import { isFerryError } from "../../observe/index.ts";
import { parsePlatform } from "../../oci/index.ts";
import {
  Copier,
  type CopyEvent,
  type CopySummary,
  DEFAULT_CONCURRENCY,
  explainPullError,
  type Place,
  parsePlace,
  STORE_PREFIX,
} from "../../pull/index.ts";
import {
  DEFAULT_DOMAIN,
  OFFICIAL_REPOSITORY_PREFIX,
  parseReference,
  repositoryName,
} from "../../reference/index.ts";
import type { RegistryClient } from "../../registry/index.ts";
import { createRegistryClient, openStore, parseTimeout, TIMEOUT_USAGE } from "../context.ts";
import { ExitCode, errorJson, type Output, renderError, usageError } from "../output.ts";

const COMMON_OPTIONS = `  --all                         every platform of a multi-platform image (each image, then the index)
  --platform OS/ARCH[/VARIANT]  without --all, the platform taken from a multi-platform image (default: this host's)
  --concurrency N               blobs in flight at once (default ${DEFAULT_CONCURRENCY})
${TIMEOUT_USAGE}  --store DIR                   store directory (default: $FERRY_STORE or the default location)
  --config FILE                 ferry config file (default: $FERRY_CONFIG or ~/.config/ferry/config.yaml)
  --json                        newline-delimited JSON events, ending with a "done" summary
`;

export const pushUsage = `Usage: ferry push REF [options]

Upload a stored image to the registry its name points at: blobs the registry
has are skipped, manifests are sent byte for byte (the digest stays the same).

Options:
${COMMON_OPTIONS}`;

export const copyUsage = `Usage: ferry copy SRC DST [options]

Copy an image, manifests byte for byte (digests unchanged). SRC and DST are
registry references, or store:REF for the local store:
  registry → registry  blobs the destination has are skipped, blobs in another repository
                       of the same registry are mounted, the rest streamed (verified) through
                       the store's ingest area
  store:REF → registry the same as \`ferry push\`
  registry → store:REF a pull (recorded under the source's name, and REF)
  store:A → store:B    another name for a stored image
(Docker Hub's image named "store" is written ${DEFAULT_DOMAIN}/${OFFICIAL_REPOSITORY_PREFIX}store.)

Options:
${COMMON_OPTIONS}`;

const OPTIONS = {
  all: { type: "boolean" },
  platform: { type: "string" },
  concurrency: { type: "string" },
  timeout: { type: "string" },
  store: { type: "string" },
  config: { type: "string" },
  json: { type: "boolean" },
} as const;

export async function pushCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  if (positionals.length !== 1)
    throw usageError("push needs one stored image reference", "e.g. `ferry push HOST/REPO:TAG`");
  const text = positionals[0] as string;
  return copyBetween(
    text,
    { kind: "store", ref: parseReference(text) },
    text,
    values,
    output,
    signal,
  );
}

export async function copyCommand(
  args: string[],
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
  if (positionals.length !== 2) {
    throw usageError(
      "copy needs a source and a destination",
      "e.g. `ferry copy HOST/A:TAG HOST/B:TAG`, or store:REF for the local store",
    );
  }
  const [src, dst] = positionals as [string, string];
  return copyBetween(src, parsePlace(src), dst, values, output, signal);
}

interface Values {
  all?: boolean | undefined;
  platform?: string | undefined;
  concurrency?: string | undefined;
  timeout?: string | undefined;
  store?: string | undefined;
  config?: string | undefined;
  json?: boolean | undefined;
}

async function copyBetween(
  srcText: string,
  from: Place,
  dstText: string,
  values: Values,
  output: Output,
  signal: AbortSignal,
): Promise<number> {
  const concurrency =
    values.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw usageError(
      `--concurrency must be a whole number from 1 to 64, got "${values.concurrency}"`,
    );
  }
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform);
  const timeoutMs = values.timeout === undefined ? undefined : parseTimeout(values.timeout);
  const to: Place = parsePlace(dstText);
  const renderer = values.json ? new JsonRenderer(output) : new PlainRenderer(output);
  const store = await openStore(values);
  const registry = createRegistryClient({ config: values.config, output, timeoutMs });
  const copier = new Copier({ registry, store, concurrency });
  try {
    const summary = await copier.copy(from, to, {
      all: values.all === true,
      ...(platform ? { platform } : {}),
      onEvent: (e) => renderer.event(e),
      signal,
    });
    renderer.done(summary);
    return ExitCode.ok;
  } catch (raw) {
    const err = await explainSource(raw, srcText, from, registry, signal);
    if (!values.json) return renderError(err, output);
    output.out(errorJson(err, { source: srcText, destination: dstText }));
    return renderError(err, { out() {}, err() {}, isTTY: false, columns: 80 });
  } finally {
    await registry.close();
  }
}

/** A failure reading the source registry is worded as a pull's would be (tag vs repository not found, …). */
async function explainSource(
  err: unknown,
  input: string,
  from: Place,
  registry: RegistryClient,
  signal: AbortSignal,
): Promise<unknown> {
  const ref = from.ref;
  const aboutSource =
    isFerryError(err) && err.fields.host === ref.domain && err.fields.repository === ref.path;
  if (from.kind !== "registry" || !aboutSource) return err;
  return explainPullError(err, { input, ref, registry, signal });
}

const shortId = (digest: string) => digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);

/** Docker's push lines: `<id>: Layer already exists`, `Mounted from REPO`, `Pushed`, `TAG: digest: … size: N`. */
class PlainRenderer {
  readonly #output: Output;
  #intoStore = false;
  constructor(output: Output) {
    this.#output = output;
  }
  event(e: CopyEvent): void {
    const out = (line: string) => this.#output.out(`${line}\n`);
    if (e.type === "resolved") {
      this.#intoStore = e.into === "store";
      if (!this.#intoStore) {
        const dst = parseReference(e.destination);
        out(`The push refers to repository [${repositoryName(dst)}]`);
      } else if (!e.source.startsWith(STORE_PREFIX)) {
        const src = parseReference(e.source);
        out(`${src.digest ?? src.tag}: Pulling from ${src.path}`); // a pull, worded as one
      }
    } else if (e.type === "retry") {
      out(`${shortId(e.digest)}: Retrying (attempt ${e.attempt + 1}): ${e.reason}`);
    } else if (e.type === "manifest") {
      out(`${e.platform ?? e.tag}: digest: ${e.digest} size: ${e.size}`);
    } else if (e.kind === "layer") {
      const id = shortId(e.digest);
      if (e.status === "exists")
        out(`${id}: ${this.#intoStore ? "Already exists" : "Layer already exists"}`);
      else if (e.status === "mounted") out(`${id}: Mounted from ${e.from}`);
      else if (e.status === "complete")
        out(`${id}: ${this.#intoStore ? "Pull complete" : "Pushed"}`);
    }
  }
  done(s: CopySummary): void {
    if (this.#intoStore) this.#output.out(`Digest: ${s.digest}\n${s.destination}\n`);
  }
}

class JsonRenderer {
  readonly #output: Output;
  readonly #lastProgress = new Map<string, number>();
  constructor(output: Output) {
    this.#output = output;
  }
  event(e: CopyEvent): void {
    if (e.type === "blob" && (e.status === "downloading" || e.status === "uploading")) {
      // A few progress lines a second per blob.
      const now = Date.now();
      if (now - (this.#lastProgress.get(e.digest) ?? 0) < 250) return;
      this.#lastProgress.set(e.digest, now);
    }
    const { type, ...rest } = e;
    this.#output.out(`${JSON.stringify({ event: type, ...rest })}\n`);
  }
  done(s: CopySummary): void {
    this.#output.out(`${JSON.stringify({ event: "done", ...s })}\n`);
  }
}
