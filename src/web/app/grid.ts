/**
 * Images × targets (or × nodes): one row per image, updated in place so focus, open
 * details and the filter survive the once-a-second refresh.
 */
import { h } from "./dom.ts";
import { formatBytes, formatRate, formatTime } from "./format.ts";
import { STATE_LABELS as LABELS } from "./states.ts";
import type { Cell, ImageRow, StatusDocument } from "./types.ts";

const ICONS: Readonly<Record<string, string>> = {
  present: "✓",
  pulled: "✓",
  pulling: "↓",
  missing: "○",
  failed: "✕",
  unknown: "○",
};

export interface GridCounts {
  readonly present: number;
  readonly pulling: number;
  readonly missing: number;
  readonly failed: number;
}

export class ImageGrid {
  readonly #table: HTMLTableElement;
  readonly #head: HTMLTableRowElement;
  readonly #body: HTMLTableSectionElement;
  readonly #filter: HTMLInputElement;
  readonly #shown: HTMLElement;
  readonly #rows = new Map<string, { tr: HTMLTableRowElement; key: string; text: string }>();
  #columns: string[] = [];

  constructor(table: HTMLTableElement, filter: HTMLInputElement, shown: HTMLElement) {
    this.#table = table;
    this.#filter = filter;
    this.#shown = shown;
    this.#head = h("tr");
    this.#body = h("tbody");
    table.append(h("thead", {}, this.#head), this.#body);
    filter.addEventListener("input", () => this.#applyFilter());
    this.#body.addEventListener("keydown", (event) => this.#onKey(event));
  }

  /** Renders the document's images; returns counts of cells by state. */
  render(doc: StatusDocument): GridCounts {
    const images = doc.images ?? [];
    const byNode = doc.nodes !== undefined || images.some((i) => i.nodes !== undefined);
    const columns = columnsOf(doc, images, byNode);
    if (columns.join("\n") !== this.#columns.join("\n")) {
      this.#columns = columns;
      this.#head.replaceChildren(
        h("th", { scope: "col" }, "Image"),
        ...columns.map((c) => h("th", { scope: "col" }, c)),
      );
      for (const row of this.#rows.values()) row.tr.remove();
      this.#rows.clear();
    }
    const counts = { present: 0, pulling: 0, missing: 0, failed: 0 };
    const seen = new Set<string>();
    let previous: HTMLTableRowElement | undefined;
    for (const image of images) {
      seen.add(image.image);
      const cells = (byNode ? image.nodes : image.targets) ?? {};
      for (const c of columns) {
        const state = cells[c]?.state ?? "unknown";
        if (state === "present" || state === "pulled") counts.present++;
        else if (state === "pulling") counts.pulling++;
        else if (state === "failed") counts.failed++;
        else counts.missing++;
      }
      const key = JSON.stringify([image.required, image.platform, columns.map((c) => cells[c])]);
      let row = this.#rows.get(image.image);
      if (row === undefined || row.key !== key) {
        const tr = row?.tr ?? h("tr", { tabindex: 0 });
        tr.dataset.image = image.image;
        tr.replaceChildren(
          rowHeader(image),
          ...columns.map((c) => cellElement(image, c, cells[c])),
        );
        const text = [image.image, ...columns.map((c) => LABELS[cells[c]?.state ?? "unknown"])]
          .join(" ")
          .toLowerCase();
        row = { tr, key, text };
        this.#rows.set(image.image, row);
      }
      // Keep list order without moving rows that are already in place (focus stays).
      const expected = previous === undefined ? this.#body.firstChild : previous.nextSibling;
      if (expected !== row.tr) this.#body.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    for (const [image, row] of this.#rows) {
      if (seen.has(image)) continue;
      row.tr.remove();
      this.#rows.delete(image);
    }
    this.#table.setAttribute("aria-rowcount", String(images.length + 1));
    this.#applyFilter();
    return counts;
  }

  #applyFilter(): void {
    const words = this.#filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of this.#rows.values()) {
      const match = words.every((w) => row.text.includes(w));
      row.tr.hidden = !match;
      if (match) shown++;
    }
    const total = this.#rows.size;
    this.#shown.textContent =
      words.length === 0
        ? `${total} image${total === 1 ? "" : "s"}`
        : `${shown} of ${total} images`;
  }

  /** Arrow keys move between visible rows; Home and End jump. */
  #onKey(event: KeyboardEvent): void {
    const current = (event.target as HTMLElement).closest("tr");
    if (current === null || current !== event.target) return;
    const rows = [...this.#body.rows].filter((r) => !r.hidden);
    const at = rows.indexOf(current);
    const next =
      event.key === "ArrowDown"
        ? rows[at + 1]
        : event.key === "ArrowUp"
          ? rows[at - 1]
          : event.key === "Home"
            ? rows[0]
            : event.key === "End"
              ? rows[rows.length - 1]
              : undefined;
    if (next === undefined) return;
    event.preventDefault();
    next.focus();
  }
}

function columnsOf(doc: StatusDocument, images: readonly ImageRow[], byNode: boolean): string[] {
  const declared = byNode ? doc.nodes : doc.targets;
  const names = new Set<string>(declared ?? []);
  for (const image of images)
    for (const name of Object.keys((byNode ? image.nodes : image.targets) ?? {})) names.add(name);
  return [...names];
}

function rowHeader(image: ImageRow): HTMLTableCellElement {
  return h(
    "th",
    { scope: "row" },
    h("span", { class: "image-name" }, image.image),
    image.required
      ? h(
          "span",
          { class: "badge required", title: "required: readiness waits for it" },
          "required",
        )
      : h(
          "span",
          { class: "badge optional", title: "optional: readiness does not wait for it" },
          "optional",
        ),
    image.source === "webhook"
      ? h(
          "span",
          { class: "badge", title: "pulled because a registry webhook named it" },
          "webhook",
        )
      : null,
    image.platform ? h("span", { class: "badge muted" }, image.platform) : null,
  );
}

function cellElement(
  image: ImageRow,
  column: string,
  cell: Cell | undefined,
): HTMLTableCellElement {
  const state = cell?.state ?? "unknown";
  const label = LABELS[state] ?? state;
  const td = h("td", { class: `cell state-${state}`, "data-state": state, "data-column": column });
  const head = h(
    "span",
    { class: "state" },
    h("span", { class: "icon", "aria-hidden": "true" }, ICONS[state] ?? "?"),
    label,
  );
  const pinned = cell?.pinned
    ? h(
        "span",
        { class: "badge pinned", title: "pinned: the runtime's and ferry's pruning keep it" },
        "pinned",
      )
    : null;
  if (state === "failed") {
    const error = cell?.lastError;
    const reason = error === undefined ? "no reason given" : `${error.code}: ${error.message}`;
    td.title = reason;
    td.append(
      h(
        "details",
        {},
        h("summary", { "aria-label": `${image.image} failed on ${column}: show why` }, head),
        h("p", { class: "reason" }, reason),
        error?.at ? h("p", { class: "muted" }, `at ${formatTime(error.at)}`) : null,
        cell?.retry
          ? h(
              "p",
              { class: "muted" },
              `next attempt at ${formatTime(cell.retry.nextAttemptAt)} (${cell.retry.attempts} failed in a row)`,
            )
          : null,
      ),
    );
    if (pinned) td.append(pinned);
    return td;
  }
  td.append(head);
  if (pinned) td.append(pinned);
  if (state === "pulling") {
    const p = cell?.progress;
    const bar = h("progress", {
      max: p && p.total > 0 ? p.total : undefined,
      value: p && p.total > 0 ? p.done : undefined,
      "aria-label": `${image.image} on ${column}: pulling`,
    });
    td.append(bar);
    if (p !== undefined && p.total > 0) {
      td.append(
        h(
          "span",
          { class: "progress-text" },
          `${formatBytes(p.done)} of ${formatBytes(p.total)}`,
          p.bytesPerSecond ? ` · ${formatRate(p.bytesPerSecond)}` : "",
        ),
      );
    }
  } else if (cell?.digest || cell?.lastPulled || cell?.lastChecked) {
    td.title = [
      cell.digest ? `digest ${cell.digest}` : "",
      cell.lastPulled ? `pulled ${formatTime(cell.lastPulled)}` : "",
      cell.lastChecked ? `checked ${formatTime(cell.lastChecked)}` : "",
    ]
      .filter(Boolean)
      .join("\n");
  }
  if (state === "unknown") td.title = "not looked at yet: waiting for its turn";
  if (state === "missing" && cell?.lastError)
    td.title = `${cell.lastError.code}: ${cell.lastError.message}`;
  return td;
}
