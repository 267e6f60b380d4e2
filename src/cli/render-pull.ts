import type { PullEvent, PullSummary } from "../pull/index.ts";
import { errorJson, type Output } from "./output.ts";
import { header, shortId, statusLine } from "./pull-lines.ts";
import { QuietRenderer } from "./render-quiet.ts";
import { TtyRenderer } from "./render-tty.ts";

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
