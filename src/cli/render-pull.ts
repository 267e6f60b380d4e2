import type { PullEvent, PullSummary } from "../pull/index.ts";
import { familiarName, formatReference, parseReference } from "../reference/index.ts";
import { errorJson, formatBytes, type Output } from "./output.ts";
import { QuietRenderer } from "./render-quiet.ts";

/** Renders pull events: Docker-like plain lines, live TTY progress, or NDJSON. */
export interface PullRenderer {
  event(e: PullEvent): void;
  done(summary: PullSummary): void;
  failed(reference: string, err: unknown): void;
  close(): void;
}

export type RenderMode = "tty" | "plain" | "json" | "quiet";

/** `references`: the command line's, formatted, for output that follows their order. */
export function createRenderer(
  mode: RenderMode,
  output: Output,
  references: readonly string[] = [],
): PullRenderer {
  switch (mode) {
    case "json":
      return new JsonRenderer(output);
    case "tty":
      return new TtyRenderer(output);
    case "quiet":
      return new QuietRenderer(output, references);
    default:
      return new PlainRenderer(output);
  }
}

const shortId = (digest: string) => digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);

function header(reference: string): string {
  // Docker shows the repository path alone: "16: Pulling from library/postgres".
  const ref = parseReference(reference);
  return `${ref.digest ?? ref.tag}: Pulling from ${ref.path}`;
}

function statusLine(s: PullSummary): string {
  const name = familiarName(parseReference(s.reference));
  return s.status === "up-to-date"
    ? `Status: Image is up to date for ${name}`
    : `Status: Downloaded newer image for ${name}`;
}

class PlainRenderer implements PullRenderer {
  readonly #output: Output;
  constructor(output: Output) {
    this.#output = output;
  }
  event(e: PullEvent): void {
    if (e.type === "resolved") this.#output.out(`${header(e.reference)}\n`);
    else if (e.type === "retry")
      this.#output.out(`${shortId(e.digest)}: Retrying (attempt ${e.attempt + 1}): ${e.reason}\n`);
    else if (e.kind === "layer" && e.status === "exists")
      this.#output.out(`${shortId(e.digest)}: Already exists\n`);
    else if (e.kind === "layer" && e.status === "complete")
      this.#output.out(`${shortId(e.digest)}: Pull complete\n`);
  }
  done(s: PullSummary): void {
    this.#output.out(`Digest: ${s.digest}\n${statusLine(s)}\n${s.reference}\n`);
  }
  failed(): void {}
  close(): void {}
}

class JsonRenderer implements PullRenderer {
  readonly #output: Output;
  readonly #lastProgress = new Map<string, number>();
  constructor(output: Output) {
    this.#output = output;
  }
  event(e: PullEvent): void {
    if (e.type === "blob" && e.status === "downloading") {
      // Throttle progress to a few lines a second per blob.
      const now = Date.now();
      if (now - (this.#lastProgress.get(e.digest) ?? 0) < 250) return;
      this.#lastProgress.set(e.digest, now);
    }
    const { type, ...rest } = e;
    this.#output.out(`${JSON.stringify({ event: type, ...rest })}\n`);
  }
  done(s: PullSummary): void {
    this.#output.out(
      `${JSON.stringify({
        event: "done",
        reference: s.reference,
        digest: s.digest,
        manifestDigest: s.manifestDigest,
        status: s.status,
        bytesDownloaded: s.bytesDownloaded,
        // where the downloaded bytes came from: other nodes (peer sharing) or the registry
        bytesFromPeers: s.bytesFromPeers ?? 0,
        bytesFromRegistry: s.bytesDownloaded - (s.bytesFromPeers ?? 0),
        blobsDownloaded: s.blobsDownloaded,
        blobsSkipped: s.blobsSkipped,
        seconds: s.seconds,
      })}\n`,
    );
  }
  failed(reference: string, err: unknown): void {
    this.#output.out(errorJson(err, { reference }));
  }
  close(): void {}
}

interface Row {
  key: string;
  text: () => string;
}

/** Live progress: a block of lines redrawn in place (cursor up + clear), at most ten times a second. */
class TtyRenderer implements PullRenderer {
  readonly #output: Output;
  readonly #rows: Row[] = [];
  readonly #layers = new Map<
    string,
    { status: string; current: number; size: number; since: number }
  >();
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(output: Output) {
    this.#output = output;
    this.#timer = setInterval(() => this.#draw(), 100);
    this.#timer.unref();
  }

  event(e: PullEvent): void {
    if (e.type === "resolved") {
      const text = header(e.reference);
      this.#rows.push({ key: `h:${e.reference}`, text: () => text });
      return;
    }
    if (e.type === "retry") return;
    if (e.kind !== "layer") return;
    const key = `${e.reference} ${e.digest}`;
    let layer = this.#layers.get(key);
    if (layer === undefined) {
      layer = { status: e.status, current: 0, size: e.size, since: Date.now() };
      this.#layers.set(key, layer);
      const l = layer;
      this.#rows.push({ key, text: () => `${shortId(e.digest)}: ${this.#describe(l)}` });
    }
    if (layer.status !== "downloading" && e.status === "downloading") layer.since = Date.now();
    layer.status = e.status;
    if (e.current !== undefined) layer.current = e.current;
  }

  #describe(l: { status: string; current: number; size: number; since: number }): string {
    switch (l.status) {
      case "exists":
        return "Already exists";
      case "waiting":
        return "Waiting";
      case "complete":
        return "Pull complete";
      default: {
        const width = Math.max(10, Math.min(40, this.#output.columns - 60));
        const frac = l.size > 0 ? Math.min(1, l.current / l.size) : 0;
        const filled = Math.round(frac * width);
        const bar = `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}${" ".repeat(width - filled)}]`;
        const secs = Math.max(0.001, (Date.now() - l.since) / 1000);
        return `Downloading ${bar} ${formatBytes(l.current)}/${formatBytes(l.size)} ${formatBytes(l.current / secs)}/s`;
      }
    }
  }

  #draw(): void {
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    for (const row of this.#rows) text += `\x1b[2K${row.text()}\n`;
    this.#drawn = this.#rows.length;
    this.#output.out(text);
  }

  done(s: PullSummary): void {
    const lines = [`Digest: ${s.digest}`, statusLine(s), s.reference];
    for (const line of lines) this.#rows.push({ key: `d:${s.reference}`, text: () => line });
    this.#draw();
  }
  failed(reference: string): void {
    // The error is printed below the block: draw the image's last frame, then leave it be, so
    // no redraw moves the cursor up over the error.
    this.#draw();
    const name = formatReference(parseReference(reference));
    const gone = (key: string) => key === `h:${name}` || key.startsWith(`${name} `);
    for (let i = this.#rows.length - 1; i >= 0; i--) {
      if (gone(this.#rows[i]?.key ?? "")) this.#rows.splice(i, 1);
    }
    this.#drawn = 0;
  }
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#rows.length > 0) this.#draw();
  }
}
