/**
 * The status document rendered into the page's HTML on the server, so the first paint, a
 * browser without JavaScript, `curl` and an early screenshot all show the current state. The
 * front end replaces it with its live view; the same document rides along as a JSON data block
 * (not executed, so the CSP's `script-src 'self'` still holds) for the front end's first render.
 */
import { formatBytes as bytes } from "./app/format.ts";
import { ACTIVITY_SHOWN, orderActivity } from "./app/order.ts";
import { STATE_LABELS } from "./app/states.ts";
import type { ActivityEntry, Cell, ImageRow, StatusDocument } from "./app/types.ts";

/** The markers index.html carries where the server puts its parts. */
export const SNAPSHOT_MARKERS = {
  kind: "<!--ferry:kind-->",
  node: "<!--ferry:node-->",
  body: "<!--ferry:snapshot-->",
} as const;

/** index.html with the document rendered in and embedded as data. */
export function renderSnapshot(index: string, doc: StatusDocument): string {
  const kind = doc.kind ?? (doc.mirror ? "mirror" : "agent");
  return (
    index
      // Functions, so a `$&` in the document is text, not a replacement pattern.
      .replace(SNAPSHOT_MARKERS.kind, () => ` ${escapeHtml(kind)}`)
      .replace(SNAPSHOT_MARKERS.node, () => escapeHtml(doc.node ?? ""))
      .replace(SNAPSHOT_MARKERS.body, () => `${snapshotSection(doc)}\n${dataBlock(doc)}`)
  );
}

/** The document as a JSON data block; `<` escaped so no text in it can close the element. */
export function dataBlock(doc: unknown): string {
  const json = JSON.stringify(doc)
    .replaceAll("<", "\\u003c")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");
  return `<script type="application/json" id="initial-status">${json}</script>`;
}

function snapshotSection(doc: StatusDocument): string {
  const parts = [
    `<p class="notice">State at ${escapeHtml(doc.time ?? "?")} (UTC)${
      doc.ready === undefined ? "" : `: <strong>${doc.ready ? "Ready" : "Not ready"}</strong>`
    }. Reload for newer data, or turn on JavaScript for live updates; the same data is at <a href="status">/status</a> (JSON).</p>`,
  ];
  if (doc.images !== undefined) parts.push(imagesTable(doc, doc.images));
  if (doc.activity !== undefined) parts.push(activityTable(doc.activity));
  if (doc.mirror) {
    const m = doc.mirror;
    parts.push(
      `<p>${m.hits} hits, ${m.misses} misses; ${escapeHtml(bytes(m.bytesServed))} served, ${escapeHtml(bytes(m.bytesUpstream))} fetched upstream.</p>`,
    );
    if (m.upstream) parts.push(`<p>Upstream: ${escapeHtml(m.upstream.state)}.</p>`);
    if (m.repositories) {
      const rows = m.repositories.map((r) =>
        row([r.image, bytes(r.bytes), r.lastUsed ?? "–", String(r.hits)]),
      );
      parts.push(table("activity", "Cached tags", ["Image", "Size", "Last use", "Hits"], rows));
    }
    if (m.peers) {
      const rows = m.peers.members.map((p) => row([p.peer, p.live ? "live" : "down"]));
      parts.push(
        `<p>Peers: ${escapeHtml(bytes(m.peers.bytesFromPeers))} received from peers, ${escapeHtml(bytes(m.peers.bytesToPeers))} sent to peers.</p>`,
        table("peers", "Peers", ["Peer", "State"], rows),
      );
    }
    if (m.requests) {
      const rows = m.requests.map((r) => row([r.at, r.client, r.image, r.result, bytes(r.bytes)]));
      parts.push(
        table("activity", "Recent requests", ["When", "Client", "Image", "Result", "Bytes"], rows),
      );
    }
  }
  return `<section id="snapshot" aria-label="Current state">\n${parts.join("\n")}\n</section>`;
}

function imagesTable(doc: StatusDocument, images: readonly ImageRow[]): string {
  const byNode = doc.nodes !== undefined || images.some((i) => i.nodes !== undefined);
  const names = new Set<string>((byNode ? doc.nodes : doc.targets) ?? []);
  for (const image of images)
    for (const name of Object.keys((byNode ? image.nodes : image.targets) ?? {})) names.add(name);
  const columns = [...names];
  const rows = images.map((image) => {
    const cells = (byNode ? image.nodes : image.targets) ?? {};
    const badge = image.required ? "required" : "optional";
    return `<tr data-image="${escapeHtml(image.image)}"><th scope="row"><span class="image-name">${escapeHtml(image.image)}</span> <span class="badge ${badge}">${badge}</span></th>${columns
      .map((c) => cellHtml(c, cells[c]))
      .join("")}</tr>`;
  });
  return `<table class="grid"><caption>Images</caption><thead><tr><th scope="col">Image</th>${columns
    .map((c) => `<th scope="col">${escapeHtml(c)}</th>`)
    .join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function cellHtml(column: string, cell: Cell | undefined): string {
  const state = cell?.state ?? "unknown";
  const error = cell?.lastError;
  const progress =
    state === "pulling" && cell?.progress && cell.progress.total > 0
      ? ` ${bytes(cell.progress.done)} of ${bytes(cell.progress.total)}`
      : "";
  const reason = state === "failed" && error ? ` ${error.code}: ${error.message}` : "";
  return `<td class="cell state-${escapeHtml(state)}" data-state="${escapeHtml(state)}" data-column="${escapeHtml(column)}">${escapeHtml(
    STATE_LABELS[state] ?? state,
  )}${escapeHtml(progress)}${reason ? `<span class="reason">${escapeHtml(reason)}</span>` : ""}</td>`;
}

function activityTable(entries: readonly ActivityEntry[]): string {
  const ordered = orderActivity(entries).slice(0, ACTIVITY_SHOWN);
  const rows = ordered.map((a) =>
    row([
      a.at,
      a.image,
      a.target ?? a.node ?? "–",
      a.error ? `${a.result} ${a.error.code}: ${a.error.message}` : a.result,
      a.seconds === undefined ? "–" : `${a.seconds.toFixed(2)} s`,
      a.bytes === undefined ? "–" : bytes(a.bytes),
      a.source ?? "–",
    ]),
  );
  return table(
    "activity",
    "Recent activity",
    ["When", "Image", "Target", "Result", "Duration", "Bytes", "Source"],
    rows,
  );
}

function table(cls: string, caption: string, head: readonly string[], rows: readonly string[]) {
  const body =
    rows.length > 0 ? rows.join("") : `<tr><td colspan="${head.length}">none yet</td></tr>`;
  return `<table class="${cls}"><caption>${escapeHtml(caption)}</caption><thead><tr>${head
    .map((h) => `<th scope="col">${escapeHtml(h)}</th>`)
    .join("")}</tr></thead><tbody>${body}</tbody></table>`;
}

function row(cells: readonly string[]): string {
  return `<tr>${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`;
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}
