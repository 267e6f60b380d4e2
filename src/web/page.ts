/**
 * The status page's route: `/` (the built front end), `/assets/NAME` (its bundle) and
 * `/events` (server-sent events carrying the status document, refreshed every second while
 * a page is open). Read-only; every document passes through redactSecrets first.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Asset, type AssetSet, isAssetName, loadAssets, loadDefaultAssets } from "./assets.ts";
import { redactSecrets } from "./redact.ts";
import { renderSnapshot } from "./snapshot.ts";
import type { StatusDocument } from "./app/types.ts";

export interface StatusPageOptions {
  /** The document the page renders: the same one `/status` serves. */
  readonly status: () => unknown;
  /** The built front end (default: ferry's dist/web). */
  readonly assetsDir?: string;
  /** How often open pages get a fresh document (default 1000 ms). */
  readonly updateEveryMs?: number;
  /** Event streams open at once; more are refused with 503 (default 32). */
  readonly maxStreams?: number;
  readonly log?: (entry: Record<string, unknown>) => void;
}

export interface StatusPage {
  /** Answers the page's paths and returns true; false for any other path (the caller's). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Ends open event streams (at shutdown, so they do not hold the listener open). */
  close(): void;
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  // Everything comes from ferry itself: no CDN, no inline script.
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** Comment lines keep proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

export function createStatusPage(options: StatusPageOptions): StatusPage {
  const { assetsDir } = options;
  const load = assetsDir === undefined ? loadDefaultAssets : () => loadAssets([assetsDir]);
  let assets: Promise<AssetSet | undefined> | undefined;
  const loaded = async (): Promise<AssetSet | undefined> => {
    assets ??= load();
    const set = await assets;
    if (set === undefined) assets = undefined; // built later: look again next time
    return set;
  };
  const streams = new EventStreams(options);

  const serveAsset = async (
    req: IncomingMessage,
    res: ServerResponse,
    name: string | undefined,
  ) => {
    const set = await loaded();
    if (set === undefined) {
      return text(
        res,
        503,
        "The status page is not built: run `npm run build:web` in ferry's directory.\n",
      );
    }
    if (name === undefined) return sendIndex(req, res, set.index, await options.status());
    const found = set.files.get(name);
    if (found === undefined) return text(res, 404, "no such asset\n");
    sendAsset(req, res, found);
  };

  return {
    handle(req, res) {
      const url = new URL(req.url ?? "/", "http://page.invalid");
      const p = url.pathname;
      let name: string | undefined;
      let kind: "index" | "asset" | "events";
      if (p === "/" || p === "/index.html") kind = "index";
      else if (p === "/events") kind = "events";
      else if (p.startsWith("/assets/")) {
        kind = "asset";
        name = p.slice("/assets/".length);
      } else return false;
      if (req.method !== "GET" && req.method !== "HEAD") {
        text(res, 405, `${req.method} is not allowed here: the status page is read-only\n`, {
          allow: "GET, HEAD",
        });
        return true;
      }
      if (kind === "events") {
        streams.open(req, res);
        return true;
      }
      if (kind === "asset" && (name === undefined || !isAssetName(name))) {
        text(res, 404, "no such asset\n");
        return true;
      }
      serveAsset(req, res, name).catch((err: unknown) => {
        options.log?.({ level: "error", msg: "status page asset failed", error: String(err) });
        if (res.headersSent) res.destroy();
        else text(res, 500, "internal error\n");
      });
      return true;
    },
    close: () => streams.close(),
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function sendAsset(req: IncomingMessage, res: ServerResponse, asset: Asset): void {
  const headers = {
    ...SECURITY_HEADERS,
    "content-type": asset.type,
    "cache-control": asset.cacheControl,
    etag: asset.etag,
  };
  if (req.headers["if-none-match"] === asset.etag) {
    res.writeHead(304, headers).end();
    return;
  }
  const gzip = asset.gzipped !== undefined && acceptsGzip(req.headers["accept-encoding"]);
  const body = gzip ? (asset.gzipped as Buffer) : asset.body;
  res.writeHead(200, {
    ...headers,
    ...(asset.gzipped === undefined ? {} : { vary: "accept-encoding" }),
    ...(gzip ? { "content-encoding": "gzip" } : {}),
    "content-length": body.length,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/**
 * index.html with the current document rendered in (and embedded as data for the front end's
 * first render), so the first paint shows data. Never cached: it is the state of now.
 */
function sendIndex(req: IncomingMessage, res: ServerResponse, index: Asset, doc: unknown): void {
  const safe = redactSecrets(doc);
  const body = Buffer.from(
    renderSnapshot(index.body.toString("utf8"), (isRecord(safe) ? safe : {}) as StatusDocument),
  );
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    "content-type": index.type,
    "cache-control": "no-store",
    "content-length": body.length,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** Whether an Accept-Encoding header allows gzip (listed without q=0). */
function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(",").some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(";");
    if (coding !== "gzip" && coding !== "*") return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function text(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** Open `/events` responses, fed by one timer while any is open. */
class EventStreams {
  readonly #options: StatusPageOptions;
  readonly #open = new Set<ServerResponse>();
  #timer: NodeJS.Timeout | undefined;
  #lastWrite = 0;
  #tick: Promise<void> | undefined;
  /** The last document broadcast, without its time. */
  #lastKey: string | undefined;

  constructor(options: StatusPageOptions) {
    this.#options = options;
  }

  open(req: IncomingMessage, res: ServerResponse): void {
    if (this.#open.size >= (this.#options.maxStreams ?? 32)) {
      text(res, 503, "too many open status pages\n", { "retry-after": "10" });
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.socket?.setNoDelay(true);
    res.write("retry: 2000\n\n");
    this.#open.add(res);
    res.on("close", () => {
      this.#open.delete(res);
      if (this.#open.size === 0) this.#stopTimer();
    });
    void this.#send([res], true);
    this.#timer ??= setInterval(() => {
      this.#tick ??= this.#send([...this.#open], false).finally(() => {
        this.#tick = undefined;
      });
    }, this.#options.updateEveryMs ?? 1000);
  }

  close(): void {
    this.#stopTimer();
    for (const res of this.#open) res.end();
    this.#open.clear();
  }

  /**
   * Sends the document, or when only its time changed since the last broadcast (and `fresh`
   * is false: the receivers have it), a small `alive` event with the time.
   */
  async #send(to: readonly ServerResponse[], fresh: boolean): Promise<void> {
    let frame: string;
    try {
      const doc = redactSecrets(await this.#options.status());
      const { time, ...rest } = isRecord(doc) ? doc : { doc };
      const key = JSON.stringify(rest);
      if (!fresh && key === this.#lastKey) {
        frame = `event: alive\ndata: ${JSON.stringify({ time: time ?? new Date().toISOString() })}\n\n`;
      } else {
        frame = `event: status\ndata: ${JSON.stringify(doc)}\n\n`;
        if (!fresh) this.#lastKey = key;
      }
    } catch (err) {
      this.#options.log?.({ level: "warn", msg: "status for the page failed", error: String(err) });
      if (Date.now() - this.#lastWrite < KEEPALIVE_MS) return;
      frame = ": status unavailable\n\n";
    }
    this.#lastWrite = Date.now();
    for (const res of to) if (!res.writableEnded) res.write(frame);
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
