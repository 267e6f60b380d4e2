/**
 * The status page: subscribes to /events (server-sent events carrying the status document)
 * and renders the images grid, recent activity and charts. Talks to nothing but its origin.
 */
import { renderActivity } from "./activity.ts";
import { Charts } from "./charts.ts";
import { byId } from "./dom.ts";
import { formatBytes, formatTime } from "./format.ts";
import { ImageGrid } from "./grid.ts";
import { renderCached, renderPeers, renderRequests, renderUpstream } from "./mirror-tables.ts";
import "./style.css";
import type { StatusDocument } from "./types.ts";

/** Seconds without a document before the page calls its data stale. */
const STALE_AFTER_MS = 5_000;

type Connection = "connecting" | "live" | "reconnecting" | "stale";
const CONNECTION_TEXT: Readonly<Record<Connection, string>> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
  stale: "No update for a while…",
};

const grid = new ImageGrid(byId("grid"), byId("filter"), byId("grid-count"));
const charts = new Charts({
  store: byId("chart-store"),
  mirror: byId("chart-mirror"),
  durations: byId("chart-durations"),
  storeSummary: byId("chart-store-summary"),
  mirrorSummary: byId("chart-mirror-summary"),
  durationSummary: byId("chart-durations-summary"),
});
let lastMessage = 0;

function setConnection(state: Connection): void {
  const el = byId("connection");
  if (el.dataset.state === state) return;
  el.dataset.state = state;
  el.textContent = CONNECTION_TEXT[state];
}

function render(doc: StatusDocument): void {
  const kind = doc.kind ?? (doc.mirror ? "mirror" : "agent");
  document.title = `ferry ${kind}${doc.node ? ` · ${doc.node}` : ""}`;
  byId("title").textContent = `ferry ${kind}`;
  byId("node").textContent = doc.node ?? "";
  byId("updated").textContent = doc.time ? `updated ${formatTime(doc.time)}` : "";
  const ready = byId("ready");
  ready.hidden = doc.ready === undefined;
  ready.dataset.ready = String(doc.ready);
  ready.textContent = doc.ready ? "Ready" : "Not ready";

  const hasImages = doc.images !== undefined;
  byId("images").hidden = !hasImages;
  byId("activity").hidden = doc.activity === undefined;
  if (hasImages) {
    const c = grid.render(doc);
    byId("count-present").textContent = String(c.present);
    byId("count-pulling").textContent = String(c.pulling);
    byId("count-missing").textContent = String(c.missing);
    byId("count-failed").textContent = String(c.failed);
  }
  byId("summary").hidden = !hasImages;
  const last = doc.storeUsage?.samples.at(-1);
  byId("count-store").textContent = last ? formatBytes(last.bytes) : "–";
  byId("count-queue").textContent = String(doc.queue?.depth ?? "–");
  if (doc.activity !== undefined) renderActivity(byId("activity-body"), doc.activity);
  const mirror = doc.mirror;
  byId("mirror-section").hidden = !mirror;
  if (mirror) {
    renderUpstream(byId("upstream"), mirror.upstream ?? { state: "unknown" });
    renderCached(byId("cached-body"), mirror.repositories ?? []);
    renderRequests(byId("requests-body"), mirror.requests ?? []);
    byId("peers").hidden = mirror.peers === undefined;
    if (mirror.peers) renderPeers(byId("peers-body"), byId("peer-traffic"), mirror.peers);
  }
  charts.store(doc.storeUsage);
  charts.mirror(doc.mirror);
  byId("chart-durations").closest("figure")!.hidden = doc.activity === undefined;
  if (doc.activity !== undefined) charts.durations(doc.activity);
}

function connect(): void {
  const events = new EventSource("events");
  events.addEventListener("open", () => setConnection("live"));
  events.addEventListener("error", () => setConnection("reconnecting"));
  // Nothing changed but the time: the page is current.
  events.addEventListener("alive", (event) => {
    lastMessage = Date.now();
    setConnection("live");
    const { time } = JSON.parse((event as MessageEvent<string>).data) as { time?: string };
    byId("updated").textContent = time ? `updated ${formatTime(time)}` : "";
  });
  events.addEventListener("status", (event) => {
    lastMessage = Date.now();
    setConnection("live");
    render(JSON.parse((event as MessageEvent<string>).data) as StatusDocument);
  });
  setInterval(() => {
    if (
      events.readyState === EventSource.OPEN &&
      lastMessage > 0 &&
      Date.now() - lastMessage > STALE_AFTER_MS
    ) {
      setConnection("stale");
    }
  }, 1_000);
}

/** The document the server rendered the page with: shown at once, before the stream delivers. */
function renderInitial(): void {
  const data = document.getElementById("initial-status");
  document.getElementById("snapshot")?.remove();
  if (data?.textContent) render(JSON.parse(data.textContent) as StatusDocument);
}

setConnection("connecting");
renderInitial();
connect();
