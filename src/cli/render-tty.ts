import type { PullEvent, PullSummary } from "../pull/index.ts";
import { formatReference, parseReference } from "../reference/index.ts";
import { formatBytes, type Output } from "./output.ts";
import { header, shortId, statusLine } from "./pull-lines.ts";
import type { PullRenderer } from "./render-pull.ts";

interface Layer {
  readonly digest: string;
  status: string;
  current: number;
  readonly size: number;
  since: number;
}

interface Image {
  readonly header: string;
  readonly layers: Map<string, Layer>;
}

const finished = (l: Layer) => l.status === "exists" || l.status === "complete";

/**
 * Live progress: each image's header with its layers under it, redrawn in place at most ten
 * times a second. The live region stays shorter than the terminal (cursor-up cannot reach
 * rows that scrolled off, so a taller block would be copied into scrollback at every redraw):
 * finished layers collapse into a count, then waiting ones. A finished image is printed once,
 * above the live region, and never redrawn.
 */
export class TtyRenderer implements PullRenderer {
  readonly #output: Output;
  readonly #images = new Map<string, Image>();
  /** Lines to print once, above the live region, at the next draw. */
  #settled: string[] = [];
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(output: Output) {
    this.#output = output;
    this.#timer = setInterval(() => this.#draw(true), 100);
    this.#timer.unref();
  }

  event(e: PullEvent): void {
    if (e.type === "resolved") {
      this.#images.set(e.reference, { header: header(e.reference), layers: new Map() });
      return;
    }
    if (e.type === "retry" || e.kind !== "layer") return;
    const image = this.#images.get(e.reference);
    if (image === undefined) return;
    let layer = image.layers.get(e.digest);
    if (layer === undefined) {
      layer = { digest: e.digest, status: e.status, current: 0, size: e.size, since: Date.now() };
      image.layers.set(e.digest, layer);
    }
    if (layer.status !== "downloading" && e.status === "downloading") layer.since = Date.now();
    layer.status = e.status;
    if (e.current !== undefined) layer.current = e.current;
  }

  done(s: PullSummary): void {
    const image = this.#images.get(s.reference);
    this.#images.delete(s.reference);
    if (image !== undefined) this.#settled.push(...this.#frame(image));
    this.#settled.push(`Digest: ${s.digest}`, statusLine(s), s.reference);
    this.#draw(true);
  }

  failed(reference: string): void {
    // The error is printed next, below the image's last frame; the live region of the other
    // images is drawn again under the error, so no redraw moves the cursor up over it.
    const name = formatReference(parseReference(reference));
    const image = this.#images.get(name);
    this.#images.delete(name);
    if (image !== undefined) this.#settled.push(...this.#frame(image));
    this.#draw(false);
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw(true);
  }

  #frame(image: Image): string[] {
    return [image.header, ...[...image.layers.values()].map((l) => this.#describe(l))];
  }

  /** Every image's frame, made to fit in `height` lines. */
  #live(height: number): string[] {
    const images = [...this.#images.values()];
    const full = images.flatMap((image) => this.#frame(image));
    if (full.length <= height) return full;
    const collapsed = images.flatMap((image) => {
      const layers = [...image.layers.values()];
      const done = layers.filter(finished).length;
      const waiting = layers.filter((l) => l.status === "waiting").length;
      const downloading = layers.filter((l) => !finished(l) && l.status !== "waiting");
      return [
        image.header,
        ...(done > 0 ? [`${done} of ${layers.length} layers done`] : []),
        ...downloading.map((l) => this.#describe(l)),
        ...(waiting > 0 ? [`${waiting} layers waiting`] : []),
      ];
    });
    if (collapsed.length <= height) return collapsed;
    const shown = collapsed.slice(0, height - 1);
    return [...shown, `… and ${collapsed.length - shown.length} more lines`];
  }

  #describe(l: Layer): string {
    const id = shortId(l.digest);
    switch (l.status) {
      case "exists":
        return `${id}: Already exists`;
      case "waiting":
        return `${id}: Waiting`;
      case "complete":
        return `${id}: Pull complete`;
      default: {
        const width = Math.max(10, Math.min(40, this.#output.columns - 60));
        const frac = l.size > 0 ? Math.min(1, l.current / l.size) : 0;
        const filled = Math.round(frac * width);
        const bar = `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}${" ".repeat(width - filled)}]`;
        const secs = Math.max(0.001, (Date.now() - l.since) / 1000);
        return `${id}: Downloading ${bar} ${formatBytes(l.current)}/${formatBytes(l.size)} ${formatBytes(l.current / secs)}/s`;
      }
    }
  }

  /** Settled lines once, then (with `live`) the live region, over the last one drawn. */
  #draw(live: boolean): void {
    // One row stays free: a block as tall as the screen scrolls when its last newline is written.
    // A pty may report a size of 0 (nobody set it): then the size is unknown.
    const rows = this.#output.rows ?? 0;
    const height = rows > 0 ? Math.max(1, rows - 1) : 23;
    // A line wider than the terminal wraps onto two rows, and cursor-up would count one.
    const width = this.#output.columns > 0 ? Math.max(20, this.#output.columns - 1) : undefined;
    const lines = live ? this.#live(height).map((l) => l.slice(0, width)) : [];
    if (this.#drawn === 0 && lines.length === 0 && this.#settled.length === 0) return;
    // Line by line (not erase-below: tmux keeps a screen cleared from its top in scrollback).
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    for (const line of [...this.#settled, ...lines]) text += `\x1b[2K${line}\n`;
    const leftover = this.#drawn - this.#settled.length - lines.length;
    if (leftover > 0) text += `${"\x1b[2K\n".repeat(leftover)}\x1b[${leftover}A`;
    this.#settled = [];
    this.#drawn = lines.length;
    this.#output.out(text);
  }
}
