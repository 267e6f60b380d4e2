/**
 * The mirror's tables: the tags it holds, the recent requests, the upstream's health and,
 * when sharing is on, the peers and this node's peer traffic.
 */
import { h } from "./dom.ts";
import { formatBytes, formatTime } from "./format.ts";
import type { MirrorRepository, MirrorRequest, PeerStatus, UpstreamHealth } from "./types.ts";

/** Requests shown; the document carries up to 50. */
const REQUESTS_SHOWN = 25;

export function renderCached(body: HTMLTableSectionElement, repos: readonly MirrorRepository[]) {
  const rows = [...repos]
    .sort((a, b) => b.hits - a.hits || a.image.localeCompare(b.image))
    .map((r) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("span", { class: "image-name" }, r.image)),
        h("td", { class: "num" }, formatBytes(r.bytes)),
        h("td", {}, r.lastUsed ? h("time", { datetime: r.lastUsed }, formatTime(r.lastUsed)) : "–"),
        h("td", { class: "num" }, String(r.hits)),
      ),
    );
  body.replaceChildren(...(rows.length > 0 ? rows : [empty(4, "Nothing cached yet.")]));
}

export function renderRequests(body: HTMLTableSectionElement, requests: readonly MirrorRequest[]) {
  const rows = requests
    .slice(0, REQUESTS_SHOWN)
    .map((r) =>
      h(
        "tr",
        { class: r.result === "error" ? "failed" : "" },
        h("td", {}, h("time", { datetime: r.at }, formatTime(r.at))),
        h("td", {}, r.client),
        h("th", { scope: "row" }, h("span", { class: "image-name" }, r.image)),
        h(
          "td",
          { class: `result result-${r.result}` },
          r.result === "error" ? `error (${r.status})` : r.result,
        ),
        h("td", { class: "num" }, formatBytes(r.bytes)),
      ),
    );
  body.replaceChildren(...(rows.length > 0 ? rows : [empty(5, "No requests yet.")]));
}

const UPSTREAM_TEXT: Readonly<Record<string, string>> = {
  ok: "Upstream answering",
  failing: "Upstream failing: tags are served from the store (stale) where the mirror has them",
  unknown: "Upstream not asked yet",
};

export function renderUpstream(el: HTMLElement, upstream: UpstreamHealth): void {
  el.dataset.state = upstream.state;
  el.textContent = [
    UPSTREAM_TEXT[upstream.state] ?? upstream.state,
    upstream.lastOk ? `last fetch that worked ${formatTime(upstream.lastOk)}` : "",
    upstream.lastFailure ? `last failure ${formatTime(upstream.lastFailure)}` : "",
  ]
    .filter(Boolean)
    .join(" · ");
}

export function renderPeers(
  body: HTMLTableSectionElement,
  traffic: HTMLElement,
  peers: PeerStatus,
): void {
  const rows = peers.members.map((m) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, m.peer),
      h("td", { class: m.live ? "result-hit" : "result-error" }, m.live ? "live" : "down"),
    ),
  );
  body.replaceChildren(...(rows.length > 0 ? rows : [empty(2, "No other members.")]));
  traffic.textContent =
    `This node received ${formatBytes(peers.bytesFromPeers)} from peers and ` +
    `${formatBytes(peers.bytesFromUpstream)} from upstreams, and sent ${formatBytes(peers.bytesToPeers)} to peers; ` +
    `${peers.transfersAbandoned} transfer${peers.transfersAbandoned === 1 ? "" : "s"} from peers abandoned.` +
    (peers.blobs ?? [])
      .map(
        (b) =>
          ` ${b.digest.slice(0, 19)}: from ${b.receivingFrom ?? "the upstream"} (depth ${b.depth}), to ${b.servingTo.length > 0 ? b.servingTo.join(", ") : `${b.serving} peer${b.serving === 1 ? "" : "s"}`}.`,
      )
      .join("");
}

function empty(columns: number, text: string): HTMLTableRowElement {
  return h("tr", {}, h("td", { colspan: columns, class: "muted" }, text));
}
